package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.bdserve.tensor.quant.Block32Ops.floats;
import static dev.bdserve.tensor.quant.Block32Ops.fp16;
import static dev.bdserve.tensor.quant.Block32Ops.ints;
import static dev.bdserve.tensor.quant.Block32Ops.signedInts;

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

    /*
     * The packed row (pack): for B super-blocks, 192B bytes of quants, then the 16B int8 scales, then the B fp16 d,
     * each in super-block order. The quants go in groups of 16·VL weights (one super-block at 512 bits, 2 at 256, 4
     * at 128), each 3 vectors of VL 32-bit words: weight v·VL + i of a group (v < 16, lane i) is held as s = q ^ 32
     * (q − 32 as a 6-bit two's complement number). Word w of lane i keeps s of weights 5w .. 5w+4 of the lane in bits
     * 2–7, 8–13, 14–19, 20–25 and 26–31, and in bits 0–1 bits 2w, 2w+1 of the lane's weight 15. So q − 32 of
     * weight 5w+k is two shifts of a loaded word, (word << 24 − 6k) >> 26, one for k = 4: no masking, no
     * assembly from two sources, no offset subtracted; weight 15 takes seven operations.
     */

    /** Weights and bytes per group of quant words. */
    static final int GROUP = 16 * VL, GROUP_BYTES = 12 * VL;
    /** Bytes with the bits of a float vector: a vector of quant words. */
    private static final VectorSpecies<Byte> WORDS = VectorSpecies.of(byte.class, FS.vectorShape());

    @Override byte[] pack(byte[] file, int rows, int blocks) {
        byte[] data = new byte[file.length];
        int rb = blocks * BYTES;
        int[] s = new int[QK];
        for (int r = 0, off = 0; r < rows; r++, off += rb)
            for (int b = 0; b < blocks; b++) {
                int at = off + b * BYTES;
                for (int hf = 0; hf < 2; hf++)
                    for (int l = 0; l < 32; l++) {
                        int lo = file[at + 64 * hf + l] & 0xFF, hi = file[at + 64 * hf + 32 + l] & 0xFF, top = file[at + QH + 32 * hf + l] & 0xFF;
                        int o = 128 * hf + l;
                        s[o] = (lo & 0xF | (top & 3) << 4) ^ 32;
                        s[o + 32] = (hi & 0xF | (top >> 2 & 3) << 4) ^ 32;
                        s[o + 64] = (lo >> 4 | (top >> 4 & 3) << 4) ^ 32;
                        s[o + 96] = (hi >> 4 | (top >> 6 & 3) << 4) ^ 32;
                    }
                for (int g = 0; g < QK / GROUP; g++)
                    for (int w = 0; w < 3; w++)
                        for (int i = 0; i < VL; i++) {
                            int word = s[g * GROUP + 15 * VL + i] >> 2 * w & 3;
                            for (int k = 0; k < 5; k++) word |= s[g * GROUP + (5 * w + k) * VL + i] << 2 + 6 * k;
                            Block32Ops.putWord(data, off + 192 * b + GROUP_BYTES * g + 4 * (VL * w + i), word);
                        }
                System.arraycopy(file, at + SCALES, data, off + 192 * blocks + 16 * b, 16);
                data[off + 208 * blocks + 2 * b] = file[at + D];
                data[off + 208 * blocks + 2 * b + 1] = file[at + D + 1];
            }
        return data;
    }

    /** The quant words at w[at ..]. */
    private static IntVector words(byte[] w, int at) { return ByteVector.fromArray(WORDS, w, at).reinterpretAsInts(); }

    /** q − 32 of a group's weight 5w + k for the words w of the group at w[at] (shift = 24 − 6k). */
    private static IntVector quant(IntVector word, int shift) {
        return (shift == 0 ? word : word.lanewise(VectorOperators.LSHL, shift)).lanewise(VectorOperators.ASHR, 26);
    }

    /** q − 32 of a group's weight 15 for the group at w[at]. */
    private static IntVector quant15(byte[] w, int at) {
        return words(w, at).lanewise(VectorOperators.AND, 3)
                .or(words(w, at + 4 * VL).lanewise(VectorOperators.LSHL, 30).lanewise(VectorOperators.LSHR, 28))
                .or(words(w, at + 8 * VL).lanewise(VectorOperators.LSHL, 30).lanewise(VectorOperators.ASHR, 26));
    }

    /** The d·sc of super-blocks c0 .. c1 of the packed row at w[off] into ds[16·c0 .. 16·c1): one vector pass. */
    private static void scales(byte[] w, int off, int blocks, int c0, int c1, float[] ds) {
        for (int b = c0; b < c1; b++) {
            float d = fp16(w, off + 208 * blocks + 2 * b);
            for (int j = 0; j < 16; j += BS.length()) {
                ByteVector sc = ByteVector.fromArray(BS, w, off + 192 * blocks + 16 * b + j);
                for (int p = 0; p < PARTS; p++)                   // int8 scales
                    floats(signedInts(sc, p)).mul(d).intoArray(ds, 16 * b + j + p * VL);
            }
        }
    }

    @Override void decodePacked(byte[] src, int off, float[] dst, int dstOff, int blocks) {
        float[] ds = new float[16 * blocks];
        scales(src, off, blocks, 0, blocks, ds);
        for (int k0 = 0, at = off; k0 < blocks * QK; k0 += GROUP, at += GROUP_BYTES) {
            for (int w = 0; w < 3; w++) {
                IntVector word = words(src, at + 4 * VL * w);
                for (int k = 0; k < 5; k++) {                      // (d·sc)·(q − 32), as ggml
                    int o = k0 + (5 * w + k) * VL;
                    floats(quant(word, 24 - 6 * k)).mul(ds[o >> 4]).intoArray(dst, dstOff + o);
                }
            }
            int o = k0 + 15 * VL;
            floats(quant15(src, at)).mul(ds[o >> 4]).intoArray(dst, dstOff + o);
        }
    }

    /**
     * Super-blocks per pass over the rows at most: rows longer than 4096 weights (ffn_down's 8192) are done in column
     * chunks, so the chunk of x (16 KB) stays in L1 beside the streamed weights; with all 32 KB of x per pass the
     * GEMV ran at half speed (7.5 against 15.3 Gweights/s, 2048×8192 from DRAM, one thread).
     */
    static final int CHUNK = 16;

    @Override public void gemv(byte[] w, int blocks, float[] x, float[] sums, float[] y, int from, int to) {
        int rowBytes = blocks * BYTES;
        float[] ds = new float[16 * blocks];                   // a row's d·sc per sub-block
        int chunks = (blocks + CHUNK - 1) / CHUNK, size = (blocks + chunks - 1) / chunks;
        for (int c0 = 0; c0 < blocks; c0 += size) {
            int c1 = Math.min(blocks, c0 + size);
            for (int o = from; o < to; o++) {
                scales(w, o * rowBytes, blocks, c0, c1, ds);
                float p = dot(w, o * rowBytes, blocks, c0, c1, x, ds);
                y[o] = c0 == 0 ? p : y[o] + p;
            }
        }
    }

    /**
     * Super-blocks c0 .. c1 of the packed row of {@code blocks} super-blocks at w[off] against x: Σ_v (d·sc)·Σ (q −
     * 32)·x over the vectors v of VL weights (a vector lies within one 16-weight sub-block), ds holding the row's d·sc.
     * Three accumulators keep the FMA chains short.
     */
    private static float dot(byte[] w, int off, int blocks, int c0, int c1, float[] x, float[] ds) {
        FloatVector a = FloatVector.zero(FS), b = a, c = a;
        for (int k0 = c0 * QK, at = off + 192 * c0; k0 < c1 * QK; k0 += GROUP, at += GROUP_BYTES) {
            for (int g = 0; g < 3; g++) {
                IntVector word = words(w, at + 4 * VL * g);
                int k = k0 + 5 * g * VL;
                for (int j = 0; j < 4; j += 2) {                  // weights 5g+j, 5g+j+1: a loop for C2's node budget
                    a = term(quant(word, 24 - 6 * j), x, k + j * VL, ds, a);
                    b = term(quant(word, 18 - 6 * j), x, k + (j + 1) * VL, ds, b);
                }
                c = term(quant(word, 0), x, k + 4 * VL, ds, c);
            }
            c = term(quant15(w, at), x, k0 + 15 * VL, ds, c);
        }
        return a.add(b).add(c).reduceLanes(VectorOperators.ADD);
    }

    /** acc + ds·Σ (q − 32)·x[k ..] for the vector of weights k .. k + VL. */
    private static FloatVector term(IntVector q, float[] x, int k, float[] ds, FloatVector acc) {
        return floats(q).mul(FloatVector.fromArray(FS, x, k)).fma(FloatVector.broadcast(FS, ds[k >> 4]), acc);
    }
}
