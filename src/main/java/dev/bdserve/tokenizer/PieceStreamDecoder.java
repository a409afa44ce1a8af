package dev.bdserve.tokenizer;

import java.util.function.IntFunction;
import java.util.function.IntPredicate;

/**
 * The stream decoder of a vocabulary whose tokens decode to fixed bytes ({@link HfTokenizer}'s and
 * {@link Llama2cTokenizer}'s): each token's bytes go through a {@link Utf8Stream}, which holds back a character split
 * across tokens. Right after BOS a piece loses its leading space when the vocabulary strips the dummy space that
 * SentencePiece prepends (unless the piece is a byte token, whose space is a real one), so that a sequence starting
 * with BOS streams to its full decoding.
 */
final class PieceStreamDecoder implements Tokenizer.StreamDecoder {
    private final Utf8Stream utf8 = new Utf8Stream();
    private final IntFunction<byte[]> pieces;
    private final IntPredicate byteToken;
    private final int bos;
    private final boolean stripAfterBos;
    private int prev = -1;

    /**
     * {@code pieces}: a token's bytes, null for one that decodes to nothing (it must refuse an id outside the
     * vocabulary); {@code byteToken}: whether a token is a byte-fallback token; {@code bos}: the BOS id or -1;
     * {@code stripAfterBos}: whether the piece after BOS loses its leading space.
     */
    PieceStreamDecoder(IntFunction<byte[]> pieces, IntPredicate byteToken, int bos, boolean stripAfterBos) {
        this.pieces = pieces;
        this.byteToken = byteToken;
        this.bos = bos;
        this.stripAfterBos = stripAfterBos;
    }

    @Override public String push(int id) {
        byte[] p = pieces.apply(id);
        String s = "";
        if (p != null) {
            int skip = spaceToSkip(stripAfterBos, bos, prev, p, byteToken.test(id));
            s = utf8.push(p, skip, p.length - skip);
        }
        prev = id;
        return s;
    }

    @Override public String flush() { return utf8.flush(); }

    /** 1 when {@code piece} (not a byte token) follows BOS and loses its leading space, else 0. */
    static int spaceToSkip(boolean stripAfterBos, int bos, int prev, byte[] piece, boolean byteToken) {
        return stripAfterBos && prev == bos && bos >= 0 && !byteToken && piece.length > 0 && piece[0] == ' ' ? 1 : 0;
    }
}
