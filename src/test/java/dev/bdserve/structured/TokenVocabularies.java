package dev.bdserve.structured;

/** Small vocabularies for tests. */
final class TokenVocabularies {
    private TokenVocabularies() {}

    /** Id 0 a special EOS, ids 1..256 the single bytes. */
    static TokenVocabulary bytes() {
        byte[][] b = new byte[257][];
        for (int i = 0; i < 256; i++) b[i + 1] = new byte[]{(byte) i};
        return TokenVocabulary.of(b, new int[]{0});
    }
}
