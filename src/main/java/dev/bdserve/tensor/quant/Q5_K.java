package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import static dev.bdserve.tensor.quant.Block32Ops.floats;
import static dev.bdserve.tensor.quant.Block32Ops.fp16;
import static dev.bdserve.tensor.quant.Block32Ops.ints;
import static dev.bdserve.tensor.quant.Block32Ops.word;
import static dev.bdserve.tensor.quant.Q4_K.FLOAT;
import static dev.bdserve.tensor.quant.Q4_K.at;

/**
 * ggml's Q5_K ({@code block_q5_K}, 176 bytes per super-block of 256 weights): as Q4_K (fp16 d, fp16 dmin, 12 bytes
 * of 6-bit scales and mins, {@link Q4_K#scales(int, int)}), then 32 bytes of fifth bits and 128 bytes of nibbles.
 * Weight 64g+l (l &lt; 32) is the low nibble of nibble byte 32g+l plus bit 2g of fifth-bit byte l times 16
 * (sub-block 2g); weight 64g+32+l the high nibble plus bit 2g+1 (sub-block 2g+1). w = (d·sc)·q − (dmin·m). The GEMV
 * keeps the activations in fp32, one row at a time.
 */
final class Q5_K extends BlockFormat {
    static final Q5_K INSTANCE = new Q5_K();
    static final int QK = 256, BYTES = 176;
    /** Offsets in a block: the 12 bytes of scales and mins, the 32 fifth-bit bytes, the 128 nibble bytes. */
    static final int SCALES = 4, QH = 16, QS = 48;

    private Q5_K() {}

    @Override public String name() { return "q5_k"; }
    @Override public int blockSize() { return QK; }
    @Override public int blockBytes() { return BYTES; }
    @Override public boolean usesSums() { return true; }

    @Override public void decode(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        for (int b = 0; b < blocks; b++, off += BYTES, dstOff += QK) {
            float d = fp16(src, off), dmin = fp16(src, off + 2);
            int s = word(src, off + SCALES), m = word(src, off + SCALES + 4), hs = word(src, off + SCALES + 8);
            long sc = Q4_K.scales(s, hs), mn = Q4_K.mins(m, hs);
            for (int g = 0; g < 4; g++) {
                FloatVector d1 = FloatVector.broadcast(FS, d * at(sc, 2 * g)), m1 = FloatVector.broadcast(FS, dmin * at(mn, 2 * g));
                FloatVector d2 = FloatVector.broadcast(FS, d * at(sc, 2 * g + 1)), m2 = FloatVector.broadcast(FS, dmin * at(mn, 2 * g + 1));
                int o = dstOff + 64 * g;
                for (int i = 0; i < 32; i += BS.length()) {
                    ByteVector v = ByteVector.fromArray(BS, src, off + QS + 32 * g + i), h = ByteVector.fromArray(BS, src, off + QH + i);
                    for (int p = 0; p < PARTS; p++) {            // (d·sc)·q − (dmin·m): two roundings, as ggml
                        IntVector n = ints(v, p), fifth = ints(h, p).lanewise(VectorOperators.LSHR, 2 * g);
                        floats(low(n, fifth)).mul(d1).sub(m1).intoArray(dst, o + i + p * VL);
                        floats(high(n, fifth)).mul(d2).sub(m2).intoArray(dst, o + 32 + i + p * VL);
                    }
                }
            }
        }
    }

    /** The 5-bit quants of the low nibbles of n, fifth bits in bit 0 of {@code fifth}. */
    private static IntVector low(IntVector n, IntVector fifth) {
        return n.lanewise(VectorOperators.AND, 0xF).or(fifth.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.AND, 0x10));
    }

    /** The 5-bit quants of the high nibbles of n, fifth bits in bit 1 of {@code fifth}. */
    private static IntVector high(IntVector n, IntVector fifth) {
        return n.lanewise(VectorOperators.LSHR, 4).or(fifth.lanewise(VectorOperators.LSHL, 3).lanewise(VectorOperators.AND, 0x10));
    }

    @Override void gemv(byte[] w, int blocks, Activations a, float[] y, int from, int to) {
        float[] x = a.x(), sums = a.sums();
        int rowBytes = blocks * BYTES;
        for (int o = from; o < to; o++) y[o] = dot(w, o * rowBytes, blocks, x, sums);
    }

    /**
     * The row of {@code blocks} super-blocks at w[off] against x: per super-block
     * d·Σ_j sc_j·Σ q·x − dmin·Σ_j m_j·Σx, the quants' fifth bits put in place in int lanes.
     */
    private static float dot(byte[] w, int off, int blocks, float[] x, float[] sums) {
        FloatVector t = FloatVector.zero(FS);
        float mins = 0;                                         // Σ over super-blocks of dmin·Σ_j m_j·Σx_j
        for (int b = 0; b < blocks; b++, off += BYTES) {
            long sc = Q4_K.scales(w, off);
            mins += Q4_K.minTerm(w, off, sums, b);
            FloatVector a = FloatVector.zero(FS);               // Σ_j sc_j·Σ q·x
            for (int g = 0; g < 4; g++) {
                FloatVector a1 = FloatVector.zero(FS), a2 = a1;   // Σ q·x of sub-blocks 2g and 2g+1
                int k = b * QK + 64 * g, q = off + QS + 32 * g;
                for (int i = 0; i < 32; i += BS.length()) {
                    ByteVector v = ByteVector.fromArray(BS, w, q + i), h = ByteVector.fromArray(BS, w, off + QH + i);
                    for (int p = 0; p < PARTS; p++) {
                        IntVector n = ints(v, p), fifth = ints(h, p).lanewise(VectorOperators.LSHR, 2 * g);   // bits 2g, 2g+1 at 0, 1
                        a1 = floats(low(n, fifth)).fma(FloatVector.fromArray(FS, x, k + i + p * VL), a1);
                        a2 = floats(high(n, fifth)).fma(FloatVector.fromArray(FS, x, k + 32 + i + p * VL), a2);
                    }
                }
                a = a1.fma(FloatVector.broadcast(FS, FLOAT[at(sc, 2 * g)]), a);
                a = a2.fma(FloatVector.broadcast(FS, FLOAT[at(sc, 2 * g + 1)]), a);
            }
            t = a.fma(FloatVector.broadcast(FS, fp16(w, off)), t);
        }
        return t.reduceLanes(VectorOperators.ADD) - mins;
    }
}
