package dev.bdserve.tokenizer;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Seeded randomized round-trip checks in plain JUnit (complementing the jqwik properties in
 * {@link TokenizerPropertiesTest}), reproducible by seed.
 */
class RandomRoundTripTest {
    static final Llama2cTokenizer LLAMA2 = Llama2cTokenizer.load(TestModels.llama2());
    static final Llama2cTokenizer TOK512 = Llama2cTokenizer.load(TestModels.tok512());

    static String randomText(Random r, int maxCodePoints) {
        var sb = new StringBuilder();
        int n = r.nextInt(maxCodePoints + 1);
        for (int i = 0; i < n; i++) {
            int kind = r.nextInt(10);
            int cp = switch (kind) {
                case 0, 1, 2, 3, 4 -> 0x20 + r.nextInt(0x5F);
                case 5 -> " \n\t\r".charAt(r.nextInt(4));
                case 6 -> 0x4E00 + r.nextInt(0x5000);          // CJK
                case 7 -> 0x1F300 + r.nextInt(0x800);          // emoji
                case 8 -> 0xA0 + r.nextInt(0x500);             // Latin-1 supplement .. Cyrillic
                default -> {
                    int c;
                    do c = r.nextInt(0x110000); while (c >= Character.MIN_SURROGATE && c <= Character.MAX_SURROGATE);
                    yield c;
                }
            };
            sb.appendCodePoint(cp);
        }
        return sb.toString();
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void encodeDecodeAndStreamRoundTrip(long seed) {
        Random r = new Random(seed);
        for (int i = 0; i < 100; i++) {
            String s = randomText(r, 80);
            for (Llama2cTokenizer t : new Llama2cTokenizer[]{LLAMA2, TOK512}) {
                int[] ids = t.encode(s, true);
                assertEquals(s, t.decode(ids), () -> "seed " + seed + " text \"" + s + "\"");
                assertEquals(s, Llama2cTokenizerTest.streamDecode(t, ids), () -> "seed " + seed + " text \"" + s + "\"");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {11, 12, 13})
    void streamOfRandomIdsEqualsDecode(long seed) {
        Random r = new Random(seed);
        for (int i = 0; i < 200; i++) {
            int[] ids = new int[r.nextInt(40)];
            for (int k = 0; k < ids.length; k++)
                ids[k] = r.nextBoolean() ? 3 + r.nextInt(256) : r.nextInt(LLAMA2.vocabSize());
            assertEquals(LLAMA2.decode(ids), Llama2cTokenizerTest.streamDecode(LLAMA2, ids),
                    () -> "seed " + seed + " ids " + java.util.Arrays.toString(ids));
        }
    }
}
