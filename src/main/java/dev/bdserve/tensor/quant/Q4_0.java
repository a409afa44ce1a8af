package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * ggml's Q4_0 ({@code block_q4_0}, 18 bytes per 32 weights): fp16 scale d, then 16 bytes whose low nibbles are
 * weights 0–15 and high nibbles weights 16–31; w = (q − 8)·d.
 */
final class Q4_0 extends BlockFormat {
    static final Q4_0 INSTANCE = new Q4_0();
    private static final int QK = 32, BYTES = 18;

    private Q4_0() {}

    @Override public String name() { return "q4_0"; }
    @Override public int blockSize() { return QK; }
    @Override public int blockBytes() { return BYTES; }

    @Override public void decode(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        for (int b = 0; b < blocks; b++, off += BYTES, dstOff += QK) {
            FloatVector d = FloatVector.broadcast(FS, half(src, off));
            for (int i = 0; i < 16; i += BS.length()) {
                ByteVector v = ByteVector.fromArray(BS, src, off + 2 + i);
                ByteVector lo = v.and((byte) 0xF).sub((byte) 8), hi = v.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
                for (int p = 0; p < PARTS; p++) {
                    widen(lo, p).mul(d).intoArray(dst, dstOff + i + p * VL);
                    widen(hi, p).mul(d).intoArray(dst, dstOff + 16 + i + p * VL);
                }
            }
        }
    }

    @Override public void gemv(byte[] w, int blocks, float[] x, float[] sums, float[] y, int from, int to) {
        int rowBytes = blocks * BYTES;
        for (int o = from; o < to; o++) {
            FloatVector t = FloatVector.zero(FS);
            for (int b = 0, off = o * rowBytes; b < blocks; b++, off += BYTES) {
                FloatVector a = FloatVector.zero(FS);          // this block's Σ (q − 8)·x
                int k = b * QK;
                for (int i = 0; i < 16; i += BS.length()) {
                    ByteVector v = ByteVector.fromArray(BS, w, off + 2 + i);
                    ByteVector lo = v.and((byte) 0xF).sub((byte) 8), hi = v.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
                    for (int p = 0; p < PARTS; p++) {
                        a = widen(lo, p).fma(FloatVector.fromArray(FS, x, k + i + p * VL), a);
                        a = widen(hi, p).fma(FloatVector.fromArray(FS, x, k + 16 + i + p * VL), a);
                    }
                }
                t = a.fma(FloatVector.broadcast(FS, half(w, off)), t);
            }
            y[o] = t.reduceLanes(VectorOperators.ADD);
        }
    }
}
