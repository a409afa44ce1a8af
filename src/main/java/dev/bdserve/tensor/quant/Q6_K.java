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
 * <p>{@link #decode} (the file's layout) widens the bytes to int lanes and assembles the 6-bit quants there; each
 * group of VL quants widens the low lanes of its own byte load (at 128 bits a load of 8 bytes for 4 lanes, reading on
 * into the block, never past it), which keeps C2 off the Vector API's deeper code for a vector's upper part. A
 * {@link QuantMatrix} keeps its rows packed for the GEMV (the comment at {@link #pack}).
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
     * The packed row (pack): for B super-blocks, the 16B int8 scales, the B fp16 d, then 192B bytes of quants, each
     * in super-block order (a row is read front to back, scales and d first, as the GEMV uses them). The quants go in
     * groups of 16·VL weights (one super-block at 512 bits, 2 at 256, 4 at 128): VL sub-blocks of 16, one per lane.
     * Lane i holds the 16 weights of the group's sub-block i, weight v of it (v < 16) as s = q ^ 32 (q − 32 as a
     * 6-bit two's complement number), in 3 32-bit words: word w of the lane (its lane of the group's vector w) keeps
     * s of weights 5w .. 5w+4 in bits 2–7, 8–13, 14–19, 20–25 and 26–31, and in bits 0–1 bits 2w, 2w+1 of weight 15.
     * So q − 32 of weight 5w+k of every sub-block is two shifts of a loaded vector of words, (word << 24 − 6k) >> 26,
     * one for k = 4: no masking, no assembly from two sources, no offset subtracted; weight 15 takes seven
     * operations. The GEMV takes x transposed to match (activations: weight v of each sub-block of a group in one
     * vector), so each lane accumulates Σ (q − 32)·x of one sub-block and a group's d·sc are one vector, applied once.
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
                        for (int i = 0; i < VL; i++) {              // lane i: sub-block i of the group
                            int sb = g * GROUP + 16 * i, word = s[sb + 15] >> 2 * w & 3;
                            for (int k = 0; k < 5; k++) word |= s[sb + 5 * w + k] << 2 + 6 * k;
                            Block32Ops.putWord(data, off + 18 * blocks + 192 * b + GROUP_BYTES * g + 4 * (VL * w + i), word);
                        }
                System.arraycopy(file, at + SCALES, data, off + 16 * b, 16);
                data[off + 16 * blocks + 2 * b] = file[at + D];
                data[off + 16 * blocks + 2 * b + 1] = file[at + D + 1];
            }
        return data;
    }

    /** The quant words at w[at ..]. */
    private static IntVector words(byte[] w, int at) { return ByteVector.fromArray(WORDS, w, at).reinterpretAsInts(); }

    /** q − 32 of weight 5w + k of each sub-block of a group, from the group's words w (shift = 24 − 6k). */
    private static IntVector quant(IntVector word, int shift) {
        return (shift == 0 ? word : word.lanewise(VectorOperators.LSHL, shift)).lanewise(VectorOperators.ASHR, 26);
    }

    /** q − 32 of weight 15 of each sub-block of the group at w[at]. */
    private static IntVector quant15(byte[] w, int at) {
        return words(w, at).lanewise(VectorOperators.AND, 3)
                .or(words(w, at + 4 * VL).lanewise(VectorOperators.LSHL, 30).lanewise(VectorOperators.LSHR, 28))
                .or(words(w, at + 8 * VL).lanewise(VectorOperators.LSHL, 30).lanewise(VectorOperators.ASHR, 26));
    }

    /** The d·sc of super-blocks c0 .. c1 of the packed row at w[off] into ds[16·c0 .. 16·c1): one vector pass. */
    private static void scales(byte[] w, int off, int blocks, int c0, int c1, float[] ds) {
        for (int b = c0; b < c1; b++) {
            float d = fp16(w, off + 16 * blocks + 2 * b);
            for (int j = 0; j < 16; j += BS.length()) {
                ByteVector sc = ByteVector.fromArray(BS, w, off + 16 * b + j);
                for (int p = 0; p < PARTS; p++)                   // int8 scales
                    floats(signedInts(sc, p)).mul(d).intoArray(ds, 16 * b + j + p * VL);
            }
        }
    }

    /** The d·sc of the VL sub-blocks from sub-block j0 of the packed row at w[off] (one group's), as {@link #scales}. */
    private static FloatVector groupScales(byte[] w, int off, int blocks, int j0) {
        return floats(signedInts(ByteVector.fromArray(BS, w, off + j0), 0)).mul(fp16(w, off + 16 * blocks + 2 * (j0 / 16)));
    }

    @Override void decodePacked(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode(src, off, dst, dstOff, blocks, true); }

    @Override void decodePanel(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode(src, off, dst, dstOff, blocks, false); }

    /** The packed row's weights: in the row's order ({@code natural}), else in the packed order (decodePanel). */
    private static void decode(byte[] src, int off, float[] dst, int dstOff, int blocks, boolean natural) {
        boolean scratch = natural && !Block32Ops.inPlace(16);      // else the packed order is untransposed where it lands
        float[] t = scratch ? new float[GROUP] : null;
        for (int k0 = 0, at = off + 18 * blocks; k0 < blocks * QK; k0 += GROUP, at += GROUP_BYTES) {
            FloatVector d = groupScales(src, off, blocks, k0 >> 4);  // each lane's sub-block's d·sc
            float[] out = scratch ? t : dst;                       // weight v of lane i's sub-block at o + v·VL + i
            int o = scratch ? 0 : dstOff + k0;
            for (int w = 0; w < 3; w++) {
                IntVector word = words(src, at + 4 * VL * w);
                for (int k = 0; k < 5; k++)                        // (d·sc)·(q − 32), as ggml
                    floats(quant(word, 24 - 6 * k)).mul(d).intoArray(out, o + (5 * w + k) * VL);
            }
            floats(quant15(src, at)).mul(d).intoArray(out, o + 15 * VL);
            if (scratch) Block32Ops.untransposed(t, 16, dst, dstOff + k0);
            else if (natural) Block32Ops.untransposeInPlace(dst, dstOff + k0);
        }
    }

    /**
     * Super-blocks per pass over the rows at most: rows longer than 4096 weights (ffn_down's 8192) are done in column
     * chunks, so the chunk of x (16 KB) stays in L1 beside the streamed weights; with all 32 KB of x per pass the
     * GEMV ran at half speed (7.5 against 15.3 Gweights/s, 2048×8192 from DRAM, one thread).
     */
    static final int CHUNK = 16;

    @Override void gemv(byte[] w, int blocks, Activations a, float[] y, int from, int to) {
        float[] x = a.x();
        int rowBytes = blocks * BYTES;
        float[] ds = new float[16 * blocks];
        int chunks = (blocks + CHUNK - 1) / CHUNK, size = (blocks + chunks - 1) / chunks;
        for (int c0 = 0; c0 < blocks; c0 += size) {
            int c1 = Math.min(blocks, c0 + size);
            for (int o = from; o < to; o++) {
                scales(w, o * rowBytes, blocks, c0, c1, ds);
                dot(w, o * rowBytes, blocks, c0, c1, x, ds, y, o);
            }
        }
    }

    @Override float[] activations(float[] x, int n) { return transposed(x, n); }

    /** x[0 .. n) with each group's weights in the packed order: weight v of the group's sub-block i at v·VL + i. */
    static float[] transposed(float[] x, int n) { return Block32Ops.transposed(x, n, 16); }

    /**
     * Super-blocks c0 .. c1 of the packed row at w[off] against xt (x {@link #transposed}): per group, Σ (q − 32)·x
     * of each lane's sub-block in three accumulators (short FMA chains), scaled once by the group's d·sc from ds; set
     * into y[o] for the first chunk, else added. (More than 325 bytes of bytecode, C2's FreqInlineSize, so that C2
     * compiles it on its own: inlined into gemv it ran 30 % slower.)
     */
    private static void dot(byte[] w, int off, int blocks, int c0, int c1, float[] xt, float[] ds, float[] y, int o) {
        FloatVector t = FloatVector.zero(FS);
        for (int k0 = c0 * QK, at = off + 18 * blocks + 192 * c0; k0 < c1 * QK; k0 += GROUP, at += GROUP_BYTES) {
            FloatVector a = FloatVector.zero(FS), b = a, c = a;
            for (int g = 0; g < 3; g++) {
                IntVector word = words(w, at + 4 * VL * g);
                int k = k0 + 5 * g * VL;
                for (int j = 0; j < 4; j += 2) {                  // weights 5g+j, 5g+j+1: a loop for C2's node budget
                    a = floats(quant(word, 24 - 6 * j)).fma(FloatVector.fromArray(FS, xt, k + j * VL), a);
                    b = floats(quant(word, 18 - 6 * j)).fma(FloatVector.fromArray(FS, xt, k + (j + 1) * VL), b);
                }
                c = floats(quant(word, 0)).fma(FloatVector.fromArray(FS, xt, k + 4 * VL), c);
            }
            c = floats(quant15(w, at)).fma(FloatVector.fromArray(FS, xt, k0 + 15 * VL), c);
            t = a.add(b).add(c).fma(FloatVector.fromArray(FS, ds, k0 >> 4), t);
        }
        float p = t.reduceLanes(VectorOperators.ADD);
        y[o] = c0 == 0 ? p : y[o] + p;
    }
}
