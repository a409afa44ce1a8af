package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.util.Objects;

import static dev.bdserve.tensor.quant.Block32Ops.*;

/**
 * ggml's Q4_1 ({@code block_q4_1}, 20 bytes per 32 weights): fp16 scale d, fp16 offset m, then 16 bytes whose low
 * nibbles are weights 0–15 and high nibbles weights 16–31; w = q·d + m.
 *
 * <p>The GEMV takes the offset's share of a block as m·Σx ({@link #usesSums}) and walks two rows side by side, as
 * {@link Q4_0} does.
 */
final class Q4_1 extends BlockFormat {
    static final Q4_1 INSTANCE = new Q4_1();
    private static final int QK = 32, BYTES = 20;

    private Q4_1() {}

    @Override public String name() { return "q4_1"; }
    @Override public int blockSize() { return QK; }
    @Override public int blockBytes() { return BYTES; }
    @Override public boolean usesSums() { return true; }

    @Override public void decode(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode2(src, off, dst, dstOff, blocks); }

    /** {@link #decode}, two blocks at a time (an odd count's last block twice); see {@link Block32Ops} on why. */
    private static void decode2(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        Objects.checkFromIndexSize(off, blocks * BYTES, src.length);          // before any store
        Objects.checkFromIndexSize(dstOff, blocks * QK, dst.length);
        for (int b = 0; b < blocks; b += 2) {
            int b1 = Math.min(b + 1, blocks - 1), f0 = off + b * BYTES, f1 = off + b1 * BYTES, y0 = dstOff + b * QK, y1 = dstOff + b1 * QK;
            float m0 = fp16(src, f0 + 2), m1 = fp16(src, f1 + 2);
            FloatVector d0 = FloatVector.broadcast(FS, fp16(src, f0)), d1 = FloatVector.broadcast(FS, fp16(src, f1));
            FloatVector mv0 = FloatVector.broadcast(FS, m0), mv1 = FloatVector.broadcast(FS, m1);
            boolean nan0 = m0 != m0, nan1 = m1 != m1;
            for (int i = 0; i < 16; i += BS.length()) {
                ByteVector v0 = ByteVector.fromArray(BS, src, f0 + 4 + i), v1 = ByteVector.fromArray(BS, src, f1 + 4 + i);
                for (int p = 0; p < PARTS; p++) {
                    int j = i + p * VL;
                    IntVector q0 = ints(v0, p), q1 = ints(v1, p);
                    plus(floats(q0.and(0xF)).mul(d0), mv0, nan0).intoArray(dst, y0 + j);
                    plus(floats(q1.and(0xF)).mul(d1), mv1, nan1).intoArray(dst, y1 + j);
                    plus(floats(q0.lanewise(VectorOperators.LSHR, 4)).mul(d0), mv0, nan0).intoArray(dst, y0 + 16 + j);
                    plus(floats(q1.lanewise(VectorOperators.LSHR, 4)).mul(d1), mv1, nan1).intoArray(dst, y1 + 16 + j);
                }
            }
        }
    }

    @Override void gemv(byte[] w, int blocks, Activations a, float[] y, int from, int to) {
        float[] x = a.x(), sums = a.sums();
        int half = (to - from + 1) / 2, last = to - 1;       // an odd range's middle row runs twice
        for (int o = from; o < from + half; o++) dot2(w, blocks, x, sums, y, o, Math.min(o + half, last));
    }

    /** Rows r0 and r1 against x, whose 32-sums are s. */
    private static void dot2(byte[] w, int blocks, float[] x, float[] s, float[] y, int r0, int r1) {
        FloatVector t0 = FloatVector.zero(FS), t1 = t0;
        float c0 = 0, c1 = 0;                                  // Σ m·Σx, per row
        for (int b = 0, f0 = r0 * blocks * BYTES, f1 = r1 * blocks * BYTES; b < blocks; b++, f0 += BYTES, f1 += BYTES) {
            FloatVector a0 = FloatVector.zero(FS), a1 = a0;    // this block's Σ q·x, per row
            int k = b * QK;
            for (int i = 0; i < 16; i += BS.length()) {
                ByteVector v0 = ByteVector.fromArray(BS, w, f0 + 4 + i), v1 = ByteVector.fromArray(BS, w, f1 + 4 + i);
                for (int p = 0; p < PARTS; p++) {
                    int j = i + p * VL;
                    IntVector q0 = ints(v0, p), q1 = ints(v1, p);
                    FloatVector xl = FloatVector.fromArray(FS, x, k + j), xh = FloatVector.fromArray(FS, x, k + 16 + j);
                    a0 = floats(q0.and(0xF)).fma(xl, a0);
                    a1 = floats(q1.and(0xF)).fma(xl, a1);
                    a0 = floats(q0.lanewise(VectorOperators.LSHR, 4)).fma(xh, a0);
                    a1 = floats(q1.lanewise(VectorOperators.LSHR, 4)).fma(xh, a1);
                }
            }
            t0 = a0.fma(FloatVector.broadcast(FS, fp16(w, f0)), t0);
            t1 = a1.fma(FloatVector.broadcast(FS, fp16(w, f1)), t1);
            c0 = Math.fma(fp16(w, f0 + 2), s[b], c0);
            c1 = Math.fma(fp16(w, f1 + 2), s[b], c1);
        }
        y[r0] = t0.reduceLanes(VectorOperators.ADD) + c0;
        y[r1] = t1.reduceLanes(VectorOperators.ADD) + c1;
    }
}
