package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.util.Objects;

import static dev.bdserve.tensor.quant.Block32Ops.*;

/**
 * ggml's Q5_0 ({@code block_q5_0}, 22 bytes per 32 weights): fp16 scale d, a little-endian 32-bit word qh whose bit j
 * is the fifth bit of weight j, then 16 bytes whose low nibbles are weights 0–15 and high nibbles weights 16–31;
 * w = (q − 16)·d.
 *
 * <p>Kernels take q − 16 as the nibble minus 16 in the lanes whose fifth bit is clear: one masked subtraction, the
 * mask loaded straight from qh's bits. The GEMV walks two rows side by side, as {@link Q4_0} does.
 */
final class Q5_0 extends BlockFormat {
    static final Q5_0 INSTANCE = new Q5_0();
    private static final int QK = 32, BYTES = 22;

    private Q5_0() {}

    @Override public String name() { return "q5_0"; }
    @Override public int blockSize() { return QK; }
    @Override public int blockBytes() { return BYTES; }

    @Override public void decode(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode2(src, off, dst, dstOff, blocks); }

    /** {@link #decode}, two blocks at a time (an odd count's last block twice); see {@link Block32Ops} on why. */
    private static void decode2(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        Objects.checkFromIndexSize(off, blocks * BYTES, src.length);          // before any store
        Objects.checkFromIndexSize(dstOff, blocks * QK, dst.length);
        for (int b = 0; b < blocks; b += 2) {
            int b1 = Math.min(b + 1, blocks - 1), f0 = off + b * BYTES, f1 = off + b1 * BYTES, y0 = dstOff + b * QK, y1 = dstOff + b1 * QK;
            FloatVector d0 = FloatVector.broadcast(FS, fp16(src, f0)), d1 = FloatVector.broadcast(FS, fp16(src, f1));
            int clear0 = ~word(src, f0 + 2), clear1 = ~word(src, f1 + 2);   // bit j set: weight j has no fifth bit
            for (int i = 0; i < 16; i += BS.length()) {
                ByteVector v0 = ByteVector.fromArray(BS, src, f0 + 6 + i), v1 = ByteVector.fromArray(BS, src, f1 + 6 + i);
                for (int p = 0; p < PARTS; p++) {
                    int j = i + p * VL;
                    IntVector q0 = ints(v0, p), q1 = ints(v1, p);
                    floats(q0.and(0xF).sub(16, bitsFrom(clear0, j))).mul(d0).intoArray(dst, y0 + j);
                    floats(q1.and(0xF).sub(16, bitsFrom(clear1, j))).mul(d1).intoArray(dst, y1 + j);
                    floats(q0.lanewise(VectorOperators.LSHR, 4).sub(16, bitsFrom(clear0, j + 16))).mul(d0).intoArray(dst, y0 + 16 + j);
                    floats(q1.lanewise(VectorOperators.LSHR, 4).sub(16, bitsFrom(clear1, j + 16))).mul(d1).intoArray(dst, y1 + 16 + j);
                }
            }
        }
    }

    @Override void gemv(byte[] w, int blocks, Activations a, float[] y, int from, int to) {
        float[] x = a.x();
        int half = (to - from + 1) / 2, last = to - 1;       // an odd range's middle row runs twice
        for (int o = from; o < from + half; o++) dot2(w, blocks, x, y, o, Math.min(o + half, last));
    }

    /** Rows r0 and r1 against x. */
    private static void dot2(byte[] w, int blocks, float[] x, float[] y, int r0, int r1) {
        FloatVector t0 = FloatVector.zero(FS), t1 = t0;
        for (int b = 0, f0 = r0 * blocks * BYTES, f1 = r1 * blocks * BYTES; b < blocks; b++, f0 += BYTES, f1 += BYTES) {
            FloatVector a0 = FloatVector.zero(FS), a1 = a0;    // this block's Σ (q − 16)·x, per row
            int k = b * QK, clear0 = ~word(w, f0 + 2), clear1 = ~word(w, f1 + 2);
            for (int i = 0; i < 16; i += BS.length()) {
                ByteVector v0 = ByteVector.fromArray(BS, w, f0 + 6 + i), v1 = ByteVector.fromArray(BS, w, f1 + 6 + i);
                for (int p = 0; p < PARTS; p++) {
                    int j = i + p * VL;
                    IntVector q0 = ints(v0, p), q1 = ints(v1, p);
                    FloatVector xl = FloatVector.fromArray(FS, x, k + j), xh = FloatVector.fromArray(FS, x, k + 16 + j);
                    a0 = floats(q0.and(0xF).sub(16, bitsFrom(clear0, j))).fma(xl, a0);
                    a1 = floats(q1.and(0xF).sub(16, bitsFrom(clear1, j))).fma(xl, a1);
                    a0 = floats(q0.lanewise(VectorOperators.LSHR, 4).sub(16, bitsFrom(clear0, j + 16))).fma(xh, a0);
                    a1 = floats(q1.lanewise(VectorOperators.LSHR, 4).sub(16, bitsFrom(clear1, j + 16))).fma(xh, a1);
                }
            }
            t0 = a0.fma(FloatVector.broadcast(FS, fp16(w, f0)), t0);
            t1 = a1.fma(FloatVector.broadcast(FS, fp16(w, f1)), t1);
        }
        y[r0] = t0.reduceLanes(VectorOperators.ADD);
        y[r1] = t1.reduceLanes(VectorOperators.ADD);
    }
}
