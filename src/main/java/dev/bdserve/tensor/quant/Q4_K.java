package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import static dev.bdserve.tensor.quant.Block32Ops.floats;
import static dev.bdserve.tensor.quant.Block32Ops.fp16;
import static dev.bdserve.tensor.quant.Block32Ops.ints;
import static dev.bdserve.tensor.quant.Block32Ops.word;

/**
 * ggml's Q4_K ({@code block_q4_K}, 144 bytes per super-block of 256 weights): fp16 d, fp16 dmin, 12 bytes of 6-bit
 * sub-block scales and mins ({@link #scales(int, int)}), then 128 bytes of nibbles. The super-block is 8 sub-blocks
 * of 32 weights; weights 64g .. 64g+31 are the low nibbles of nibble bytes 32g .. 32g+31 (sub-block 2g), weights
 * 64g+32 .. 64g+63 their high nibbles (sub-block 2g+1). w = (d·sc)·q − (dmin·m).
 *
 * <p>The GEMV takes the mins' share of a sub-block's dot product from the activation sums, dmin·m·Σx, and its
 * scales' share as (d·sc)·Σ q·x, so per weight it only widens a nibble and multiplies-adds.
 */
final class Q4_K extends BlockFormat {
    static final Q4_K INSTANCE = new Q4_K();
    static final int QK = 256, BYTES = 144;
    /** Offsets in a block: the 12 bytes of scales and mins, the 128 nibble bytes. */
    static final int SCALES = 4, QS = 16;

    private Q4_K() {}

    @Override public String name() { return "q4_k"; }
    @Override public int blockSize() { return QK; }
    @Override public int blockBytes() { return BYTES; }
    @Override public boolean usesSums() { return true; }

    /**
     * The 8 six-bit scales of the sub-blocks from the 12 packed bytes of scales and mins (shared by Q4_K and Q5_K),
     * read as little-endian words s (bytes 0–3), m (4–7) and h (8–11); sub-block j's scale is byte j of the result.
     * Bytes 0–3 hold scales 0–3 in their low 6 bits, bytes 4–7 mins 0–3; byte 8+j holds the low 4 bits of scale 4+j
     * (low nibble) and of min 4+j (high nibble), whose top 2 bits are the top bits of bytes j and 4+j.
     */
    static long scales(int s, int h) {
        return s & 0x3F3F3F3FL | (long) (h & 0x0F0F0F0F | s >>> 2 & 0x30303030) << 32;
    }

    /** The 8 six-bit mins, as {@link #scales(int, int)} gives the scales. */
    static long mins(int m, int h) {
        return m & 0x3F3F3F3FL | (long) (h >>> 4 & 0x0F0F0F0F | m >>> 2 & 0x30303030) << 32;
    }

    /** i as a float for i &lt; 256: a GEMV broadcasts an integer scale straight from this table, no conversion. */
    static final float[] FLOAT = new float[256];
    static {
        for (int i = 0; i < FLOAT.length; i++) FLOAT[i] = i;
    }

    /** The low nibbles of the bytes (0–255) in q as floats. */
    static FloatVector lowNibbles(IntVector q) { return floats(q.lanewise(VectorOperators.AND, 0xF)); }

    /** The high nibbles of the bytes (0–255) in q as floats. */
    static FloatVector highNibbles(IntVector q) { return floats(q.lanewise(VectorOperators.LSHR, 4)); }

    /** Byte j of a packing of 8. */
    static int at(long packed, int j) { return (int) (packed >>> 8 * j) & 0xFF; }

    @Override public void decode(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        for (int b = 0; b < blocks; b++, off += BYTES, dstOff += QK) {
            float d = fp16(src, off), dmin = fp16(src, off + 2);
            int s = word(src, off + SCALES), m = word(src, off + SCALES + 4), h = word(src, off + SCALES + 8);
            long sc = scales(s, h), mn = mins(m, h);
            for (int g = 0; g < 4; g++) {
                FloatVector d1 = FloatVector.broadcast(FS, d * at(sc, 2 * g)), m1 = FloatVector.broadcast(FS, dmin * at(mn, 2 * g));
                FloatVector d2 = FloatVector.broadcast(FS, d * at(sc, 2 * g + 1)), m2 = FloatVector.broadcast(FS, dmin * at(mn, 2 * g + 1));
                int o = dstOff + 64 * g;
                for (int i = 0; i < 32; i += BS.length()) {
                    ByteVector v = ByteVector.fromArray(BS, src, off + QS + 32 * g + i);
                    for (int p = 0; p < PARTS; p++) {            // (d·sc)·q − (dmin·m): two roundings, as ggml
                        IntVector n = ints(v, p);
                        lowNibbles(n).mul(d1).sub(m1).intoArray(dst, o + i + p * VL);
                        highNibbles(n).mul(d2).sub(m2).intoArray(dst, o + 32 + i + p * VL);
                    }
                }
            }
        }
    }

    /** Rows o and o + h of the range go side by side ({@link #dot2}); an odd last row pairs with itself. */
    @Override public void gemv(byte[] w, int blocks, float[] x, float[] sums, float[] y, int from, int to) {
        int h = (to - from) / 2;
        for (int o = from; o < from + h; o++) dot2(w, blocks, x, sums, y, o, o + h);
        if ((to - from) % 2 != 0) dot2(w, blocks, x, sums, y, to - 1, to - 1);
    }

    /**
     * y[o1] and y[o2], rows of {@code blocks} super-blocks, against x (two memory streams): per super-block
     * d·Σ_j sc_j·Σ q·x − dmin·Σ_j m_j·Σx, each sub-block's Σ q·x in a vector scaled once by its integer scale, the
     * mins' share from the activation sums. One loop over the 4 pairs of sub-blocks, not unrolled by hand: C2 stops
     * inlining a method's vector code past a node budget, and a third row side by side passes it.
     */
    private static void dot2(byte[] w, int blocks, float[] x, float[] sums, float[] y, int o1, int o2) {
        FloatVector t1 = FloatVector.zero(FS), t2 = t1;
        float m1 = 0, m2 = 0;                                   // Σ over super-blocks of dmin·Σ_j m_j·Σx_j
        for (int b = 0, off1 = o1 * blocks * BYTES, off2 = o2 * blocks * BYTES; b < blocks; b++, off1 += BYTES, off2 += BYTES) {
            long sc1 = scales(w, off1), sc2 = scales(w, off2);
            m1 += minTerm(w, off1, sums, b);
            m2 += minTerm(w, off2, sums, b);
            FloatVector a1 = FloatVector.zero(FS), a2 = a1;    // Σ_j sc_j·Σ q·x of each row
            for (int g = 0; g < 4; g++) {
                FloatVector l1 = FloatVector.zero(FS), h1 = l1, l2 = l1, h2 = l1;   // Σ q·x of sub-blocks 2g, 2g+1
                int k = b * QK + 64 * g, q1 = off1 + QS + 32 * g, q2 = off2 + QS + 32 * g;
                for (int i = 0; i < 32; i += BS.length()) {
                    ByteVector v1 = ByteVector.fromArray(BS, w, q1 + i), v2 = ByteVector.fromArray(BS, w, q2 + i);
                    for (int p = 0; p < PARTS; p++) {
                        IntVector n1 = ints(v1, p), n2 = ints(v2, p);
                        FloatVector xl = FloatVector.fromArray(FS, x, k + i + p * VL), xh = FloatVector.fromArray(FS, x, k + 32 + i + p * VL);
                        l1 = lowNibbles(n1).fma(xl, l1);
                        h1 = highNibbles(n1).fma(xh, h1);
                        l2 = lowNibbles(n2).fma(xl, l2);
                        h2 = highNibbles(n2).fma(xh, h2);
                    }
                }
                a1 = h1.fma(FloatVector.broadcast(FS, FLOAT[at(sc1, 2 * g + 1)]), l1.fma(FloatVector.broadcast(FS, FLOAT[at(sc1, 2 * g)]), a1));
                a2 = h2.fma(FloatVector.broadcast(FS, FLOAT[at(sc2, 2 * g + 1)]), l2.fma(FloatVector.broadcast(FS, FLOAT[at(sc2, 2 * g)]), a2));
            }
            t1 = a1.fma(FloatVector.broadcast(FS, fp16(w, off1)), t1);
            t2 = a2.fma(FloatVector.broadcast(FS, fp16(w, off2)), t2);
        }
        y[o1] = t1.reduceLanes(VectorOperators.ADD) - m1;
        y[o2] = t2.reduceLanes(VectorOperators.ADD) - m2;
    }

    /** The 8 scales of the super-block at w[off] ({@link #scales(int, int)}). */
    static long scales(byte[] w, int off) { return scales(word(w, off + SCALES), word(w, off + SCALES + 8)); }

    /** dmin·Σ_j m_j·sums[8b + j]: the mins' share of the dot product of super-block b at w[off] (Q4_K and Q5_K). */
    static float minTerm(byte[] w, int off, float[] sums, int b) {
        long mn = mins(word(w, off + SCALES + 4), word(w, off + SCALES + 8));
        float m = 0;
        for (int j = 0; j < 8; j++) m += FLOAT[at(mn, j)] * sums[8 * b + j];
        return fp16(w, off + 2) * m;
    }
}
