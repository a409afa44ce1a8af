package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import static dev.bdserve.tensor.quant.Block32Ops.floats;
import static dev.bdserve.tensor.quant.Block32Ops.fp16;
import static dev.bdserve.tensor.quant.Block32Ops.ints;

/**
 * ggml's Q6_K ({@code block_q6_K}, 210 bytes per super-block of 256 weights): 128 bytes of low nibbles (ql), 64 bytes
 * of 2-bit high parts (qh), 16 int8 scales of 16-weight sub-blocks, then fp16 d. Each half of 128 weights uses 64
 * ql bytes, 32 qh bytes and 8 scales: for l &lt; 32, weights l, l+32, l+64, l+96 of the half are the low nibbles of
 * ql bytes l and l+32 and the high nibbles of the same, topped by bits 0–1, 2–3, 4–5, 6–7 of qh byte l.
 * w = (d·sc)·(q − 32).
 *
 * <p>Kernels widen the bytes to int lanes and assemble the 6-bit quants there; the GEMV forms a super-block's 16
 * d·sc in one vector pass and scales each sub-block's Σ (q − 32)·x once. Each group of VL quants widens the low lanes
 * of its own byte load (at 128 bits a load of 8 bytes for 4 lanes, reading on into the block, never past it), which
 * keeps C2 off the Vector API's deeper code for a vector's upper part.
 */
final class Q6_K extends BlockFormat {
    static final Q6_K INSTANCE = new Q6_K();
    static final int QK = 256, BYTES = 210;
    /** Offsets in a block: the 64 qh bytes, the 16 scales, d. */
    static final int QH = 128, SCALES = 192, D = 208;

    private Q6_K() {}

    @Override public String name() { return "q6_k"; }
    @Override public int blockSize() { return QK; }
    @Override public int blockBytes() { return BYTES; }

    @Override public void decode(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        for (int b = 0; b < blocks; b++, off += BYTES, dstOff += QK) {
            float d = fp16(src, off + D);
            for (int hf = 0; hf < 2; hf++) {
                int ql = off + 64 * hf, qh = off + QH + 32 * hf, sc = off + SCALES + 8 * hf, o = dstOff + 128 * hf;
                for (int l = 0; l < 32; l += VL) {                    // bytes l .. l+VL of each: the low lanes of a load
                    IntVector nl = ints(ByteVector.fromArray(BS, src, ql + l), 0), nh = ints(ByteVector.fromArray(BS, src, ql + 32 + l), 0);
                    IntVector top = ints(ByteVector.fromArray(BS, src, qh + l), 0);
                    int s = sc + l / 16;                               // a vector never straddles two sub-blocks
                    for (int r = 0; r < 4; r += 2) {                   // (d·sc)·(q − 32), as ggml
                        int n = 2 * r;
                        floats(quant(nl.lanewise(VectorOperators.LSHR, n), top.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.LSHR, n)))
                                .mul(d * src[s + 2 * r]).intoArray(dst, o + 32 * r + l);
                        floats(quant(nh.lanewise(VectorOperators.LSHR, n), top.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, n)))
                                .mul(d * src[s + 2 * r + 2]).intoArray(dst, o + 32 * r + 32 + l);
                    }
                }
            }
        }
    }

    /** q − 32 for q = low &amp; 0xF | top &amp; 0x30 (top holding the quant's bits 4–5 in place). */
    private static IntVector quant(IntVector low, IntVector top) {
        return low.lanewise(VectorOperators.AND, 0xF).or(top.lanewise(VectorOperators.AND, 0x30)).sub(32);
    }

    @Override public void gemv(byte[] w, int blocks, float[] x, float[] sums, float[] y, int from, int to) {
        int rowBytes = blocks * BYTES;
        float[] ds = new float[16];                             // a super-block's d·sc per sub-block
        for (int o = from; o < to; o++) y[o] = dot(w, o * rowBytes, blocks, x, ds);
    }

    /**
     * The row of {@code blocks} super-blocks at w[off] against x: Σ_s (d·sc_s)·Σ (q − 32)·x, each 16-weight
     * sub-block's products in a vector scaled by its d·sc, quants assembled in int lanes. The super-block's 16
     * d·sc are formed in one vector pass into ds. The quarters r of a half go in a loop over the pairs (0, 1) and
     * (2, 3), not unrolled by hand: C2 stops inlining the vector code of a method past a node budget.
     */
    private static float dot(byte[] w, int off, int blocks, float[] x, float[] ds) {
        FloatVector even = FloatVector.zero(FS), odd = even;    // quarters 0 and 2, 1 and 3
        for (int b = 0; b < blocks; b++, off += BYTES) {
            float d = fp16(w, off + D);
            for (int j = 0; j < 16; j += BS.length()) {
                ByteVector sc = ByteVector.fromArray(BS, w, off + SCALES + j);
                for (int p = 0; p < PARTS; p++)                   // int8 scales: sign-extend the widened bytes
                    floats(ints(sc, p).lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24)).mul(d).intoArray(ds, j + p * VL);
            }
            for (int hf = 0; hf < 2; hf++) {
                int ql = off + 64 * hf, qh = off + QH + 32 * hf, k = b * QK + 128 * hf;
                for (int l = 0; l < 32; l += VL) {                    // bytes l .. l+VL of each: the low lanes of a load
                    IntVector nl = ints(ByteVector.fromArray(BS, w, ql + l), 0), nh = ints(ByteVector.fromArray(BS, w, ql + 32 + l), 0);
                    IntVector top = ints(ByteVector.fromArray(BS, w, qh + l), 0);
                    int s = 8 * hf + l / 16;                           // a vector never straddles two sub-blocks
                    for (int r = 0; r < 4; r += 2) {                   // quarters r (ql byte l) and r+1 (ql byte l+32)
                        int n = 2 * r, kr = k + 32 * r + l;
                        even = term(nl.lanewise(VectorOperators.LSHR, n), top.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.LSHR, n),
                                x, kr, ds[s + 2 * r], even);
                        odd = term(nh.lanewise(VectorOperators.LSHR, n), top.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, n),
                                x, kr + 32, ds[s + 2 * r + 2], odd);
                    }
                }
            }
        }
        return even.add(odd).reduceLanes(VectorOperators.ADD);
    }

    /** a + ds·Σ (q − 32)·x[k ..], q as {@link #quant} makes it. */
    private static FloatVector term(IntVector low, IntVector top, float[] x, int k, float ds, FloatVector a) {
        return floats(quant(low, top)).mul(FloatVector.fromArray(FS, x, k)).fma(FloatVector.broadcast(FS, ds), a);
    }
}
