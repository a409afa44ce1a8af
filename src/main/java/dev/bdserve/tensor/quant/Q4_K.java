package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import dev.bdserve.tensor.VectorWidth;

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
 * <p>The GEMV quantizes the token's activations to integers, as llama.cpp does for its K-quant dot products (its
 * Q8_K: |q| ≤ 127, one step per 256), here one step per group of {@link #GW} (256, or 128 at 128 bits): an error of
 * at most step / 2 = max|x| / 254 per activation ({@link Block32Ops#quantize}). It multiplies nibbles by them in
 * 16-bit lanes and adds the products of a sub-block's lanes as integers, so per 64 weights of a row it loads, shifts
 * and masks once and multiplies-adds four times in shorts, not 64 widenings and fp32 products; each sub-block's
 * (d·sc)·Σ q·x is then one float product per group, and the mins' share dmin·m·Σx comes from the sums of the
 * quantized activations.
 * A {@link QuantMatrix} keeps its rows packed for it (the comment at {@link #pack}).
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
            int s = word(src, off + SCALES), m = word(src, off + SCALES + 4), h = word(src, off + SCALES + 8);
            decodeBlock(src, off + QS, fp16(src, off), fp16(src, off + 2), scales(s, h), mins(m, h), dst, dstOff);
        }
    }

    /** The 256 weights of one super-block: its nibbles at src[qs ..], d, dmin and the 8 scales and mins as bytes. */
    private static void decodeBlock(byte[] src, int qs, float d, float dmin, long sc, long mn, float[] dst, int dstOff) {
        for (int g = 0; g < 4; g++) {
            FloatVector d1 = FloatVector.broadcast(FS, d * at(sc, 2 * g)), m1 = FloatVector.broadcast(FS, dmin * at(mn, 2 * g));
            FloatVector d2 = FloatVector.broadcast(FS, d * at(sc, 2 * g + 1)), m2 = FloatVector.broadcast(FS, dmin * at(mn, 2 * g + 1));
            int o = dstOff + 64 * g;
            for (int i = 0; i < 32; i += BS.length()) {
                ByteVector v = ByteVector.fromArray(BS, src, qs + 32 * g + i);
                for (int p = 0; p < PARTS; p++) {                // (d·sc)·q − (dmin·m): two roundings, as ggml
                    IntVector n = ints(v, p);
                    lowNibbles(n).mul(d1).sub(m1).intoArray(dst, o + i + p * VL);
                    highNibbles(n).mul(d2).sub(m2).intoArray(dst, o + 32 + i + p * VL);
                }
            }
        }
    }

    /*
     * The packed row (pack): for B super-blocks, 8B bytes of scales (byte 8b+j: scale j of super-block b in bits
     * 0-5, bits 2j, 2j+1 of its fp16 d in bits 6-7), 8B bytes of mins (the same, with dmin), then the 128B nibble
     * bytes, 144 bytes per super-block as in the file. The nibbles go in groups of SG sub-blocks (a super-block, or
     * half of one at 128 bits), GB bytes each, read by the GEMV in loads of 4·VL bytes as VL ints: int lane m of every
     * load holds nibbles of sub-block m / LS only. Byte 4m + b of load l of a group (b < 4) holds, in its low and high
     * nibble, elements 8·(LS·l + m % LS) + 2b and the next one of that sub-block (natural). So a short lane (bytes
     * 2j, 2j+1) takes its four nibbles' products with the activations of one sub-block, and an int lane's sum of them
     * over the group needs one scale. Decoded to floats (decodePanel), nibble r (bits 4r .. 4r+3) of the ints of load l
     * is float vector 8l + r, its lane m still of sub-block m / LS; activations permutes x to that order.
     */

    /** Sub-blocks per group, lanes per sub-block, weights and bytes per group. */
    static final int SG = Math.min(8, VL), LS = VL / SG, GW = 32 * SG, GB = 16 * SG;
    /** Loads of 4·VL nibble bytes per group. */
    static final int LOADS = 4 / LS;

    /** Bits 6-7 of each byte of a word: where the packed scales and mins keep d and dmin. */
    private static final long TOPS = 0xC0C0C0C0C0C0C0C0L, LOWS = ~TOPS;

    /** Where the nibble (h: 0 low, 1 high) of byte {@code at} of load l of a group sits in the group's run of weights. */
    static int natural(int l, int at, int h) {
        int m = at / 4, b = at % 4;
        return 32 * (m / LS) + 8 * (LS * l + m % LS) + 2 * b + h;
    }

    /** PANEL[VL·(8l + r) + m]: where nibble r of int lane m of load l (decodePanel's order) sits in the group's weights. */
    private static final int[] PANEL = new int[GW];
    /** QX[8·VL·l + 2·VL·k + j]: the weight whose activation the GEMV multiplies by nibble k of short lane j of load l. */
    private static final int[] QX = new int[GW];
    static {
        for (int l = 0; l < LOADS; l++)
            for (int r = 0; r < 8; r++)
                for (int m = 0; m < VL; m++) PANEL[VL * (8 * l + r) + m] = natural(l, 4 * m + r / 2, r % 2);
        for (int l = 0; l < LOADS; l++)
            for (int k = 0; k < 4; k++)                            // low, high nibble of byte 2j; of byte 2j + 1
                for (int j = 0; j < 2 * VL; j++) QX[8 * VL * l + 2 * VL * k + j] = natural(l, 2 * j + (k >> 1), k & 1);
    }

    @Override byte[] pack(byte[] file, int rows, int blocks) {
        int rb = blocks * BYTES, n = 8 * blocks;
        byte[] data = new byte[file.length];
        int[] q = new int[QK];
        for (int r = 0, off = 0; r < rows; r++, off += rb) {
            for (int b = 0; b < blocks; b++) {
                int at = off + b * BYTES, s = word(file, at + SCALES), m = word(file, at + SCALES + 4), h = word(file, at + SCALES + 8);
                long d = Short.toUnsignedLong((short) (file[at] & 0xFF | file[at + 1] << 8));
                long dmin = Short.toUnsignedLong((short) (file[at + 2] & 0xFF | file[at + 3] << 8));
                Block32Ops.putDword(data, off + 8 * b, scales(s, h) | Long.expand(d, TOPS));
                Block32Ops.putDword(data, off + n + 8 * b, mins(m, h) | Long.expand(dmin, TOPS));
                for (int l = 0; l < 128; l++) {                    // the file's order: weights 64g+l, 64g+32+l
                    int v = file[at + QS + l] & 0xFF, o = 64 * (l / 32) + l % 32;
                    q[o] = v & 0xF;
                    q[o + 32] = v >> 4;
                }
                for (int g = 0; g < QK / GW; g++)
                    for (int c = 0; c < GB; c++) {                    // byte c of the group
                        int l = c / (4 * VL), in = c % (4 * VL);
                        data[off + 2 * n + 128 * b + GB * g + c] = (byte) (q[GW * g + natural(l, in, 0)] | q[GW * g + natural(l, in, 1)] << 4);
                    }
            }
        }
        return data;
    }

    /** The fp16 kept in bits 6-7 of the 8 bytes at w[at] (pack). */
    private static float topHalf(byte[] w, int at) { return Float.float16ToFloat((short) Long.compress(Block32Ops.dword(w, at), TOPS)); }

    @Override void decodePacked(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode(src, off, dst, dstOff, blocks, true); }

    @Override void decodePanel(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode(src, off, dst, dstOff, blocks, false); }

    /** The packed row's weights: in the row's order ({@code natural}), else in the packed order (decodePanel). */
    private static void decode(byte[] src, int off, float[] dst, int dstOff, int blocks, boolean natural) {
        int n = 8 * blocks;
        float[] dl = LS == 2 ? null : new float[VL], ml = LS == 2 ? null : new float[VL];
        float[] t = natural ? new float[GW] : null;             // the packed order, then scattered to the row's
        for (int b = 0; b < blocks; b++, dstOff += QK) {
            int sc = off + 8 * b, mn = off + n + 8 * b;
            float d = topHalf(src, sc), dmin = topHalf(src, mn);
            for (int g = 0; g < QK / GW; g++) {
                FloatVector dv, mv;                                // each lane's d·sc and dmin·m, as ggml rounds them
                if (LS == 2) {                                     // 512 bits: the super-block's 8, each twice
                    dv = floats(ints(ByteVector.fromArray(BS, src, sc), 0).lanewise(VectorOperators.AND, 0x3F)).rearrange(TWICE_LOW).mul(d);
                    mv = floats(ints(ByteVector.fromArray(BS, src, mn), 0).lanewise(VectorOperators.AND, 0x3F)).rearrange(TWICE_LOW).mul(dmin);
                } else {
                    for (int i = 0; i < VL; i++) {
                        int j = SG * g + i / LS;
                        dl[i] = d * (src[sc + j] & 0x3F);
                        ml[i] = dmin * (src[mn + j] & 0x3F);
                    }
                    dv = FloatVector.fromArray(FS, dl, 0);
                    mv = FloatVector.fromArray(FS, ml, 0);
                }
                int qs = off + 2 * n + 128 * b + GB * g, o = natural ? 0 : dstOff + GW * g;
                float[] out = natural ? t : dst;
                for (int l = 0; l < LOADS; l++) {                 // int lane m: sub-block m / LS, 8 nibbles
                    IntVector v = ByteVector.fromArray(WB, src, qs + 4 * VL * l).reinterpretAsInts();
                    for (int r = 0; r < 8; r++) {                // (d·sc)·q − (dmin·m): two roundings, as ggml
                        IntVector nb = r == 7 ? v.lanewise(VectorOperators.LSHR, 28) : v.lanewise(VectorOperators.LSHR, 4 * r).and(0xF);
                        floats(nb).mul(dv).sub(mv).intoArray(out, o + VL * (8 * l + r));
                    }
                }
                if (natural)
                    for (int p = 0; p < GW; p++) dst[dstOff + GW * g + PANEL[p]] = t[p];
            }
        }
    }

    @Override float[] activations(float[] x, int n) {
        float[] t = new float[n];
        for (int k0 = 0; k0 < n; k0 += GW)
            for (int p = 0; p < GW; p++) t[k0 + p] = x[k0 + PANEL[p]];
        return t;
    }

    /** Shorts at the kernels' width, and the bytes of one load of them. */
    private static final VectorSpecies<Short> SS = VectorWidth.SHORT;
    private static final VectorSpecies<Byte> WB = VectorSpecies.of(byte.class, FS.vectorShape());

    /**
     * x[0 .. n) quantized per group of GW ({@link Block32Ops#quantize}): the integers in the order the GEMV multiplies
     * the packed nibbles in (QX), each group's step, and the sums of each 32 values of q·step (the mins' share).
     */
    @Override Activations gemvActivations(float[] x, int n) {
        short[] q = new short[n];                                // [n], each group in QX's order
        float[] sums = new float[n / SUM_GROUP];
        return new Activations(null, sums, q, Block32Ops.quantizeInOrder(x, n, QX, q, sums), GW);
    }

    @Override float[] gemvInput(float[] x, int n) { return Block32Ops.quantized(x, n, GW); }

    /**
     * Rows o and o + h of the range go side by side ({@link #dot2}); an odd last row pairs with itself. Each pair's
     * d·sc and mins' share are formed here ({@link #prepare}), not in dot2: inlined there, their vector code took so
     * much of C2's node budget that the helpers were left as calls on boxed vectors (10× slower).
     */
    @Override void gemv(byte[] w, int blocks, Activations a, float[] y, int from, int to) {
        int h = (to - from) / 2, n = 8 * blocks, nl = n * LS, rb = blocks * BYTES;
        float[] ds = new float[2 * nl + 2 * VL]; // the rows' lanes' d·sc, their mins
        for (int o = from; o < from + h; o++) {
            prepare(w, o * rb, (o + h) * rb, n, a.sums(), ds, nl);
            dot2(w, blocks, a.q(), a.scales(), ds, y, o, o + h);
        }
        if ((to - from) % 2 != 0) {
            prepare(w, (to - 1) * rb, (to - 1) * rb, n, a.sums(), ds, nl);
            dot2(w, blocks, a.q(), a.scales(), ds, y, to - 1, to - 1);
        }
    }

    /**
     * y[o1] and y[o2], packed rows of {@code blocks} super-blocks, against the quantized activations q (steps: one
     * per group; two memory streams, q loaded once for both): per group, each row's Σ nibble·q in one short
     * accumulator, read as ints whose two halves are summed (one sub-block per int lane), times the lanes' d·sc and
     * the step (ds: row o1's, then row o2's, then each row's mins' share as a vector to subtract).
     */
    private static void dot2(byte[] w, int blocks, short[] q, float[] steps, float[] ds, float[] y, int o1, int o2) {
        int n = 8 * blocks, nl = n * LS, w1 = o1 * blocks * BYTES + 2 * n, w2 = o2 * blocks * BYTES + 2 * n;
        FloatVector t1 = FloatVector.zero(FS), t2 = t1;
        for (int g = 0, k = 0; g < steps.length; g++, w1 += GB, w2 += GB) {
            ShortVector a1 = ShortVector.zero(SS), a2 = a1;
            for (int l = 0; l < LOADS; l++, k += 8 * VL) {
                ShortVector s1 = ByteVector.fromArray(WB, w, w1 + 4 * VL * l).reinterpretAsShorts();
                ShortVector s2 = ByteVector.fromArray(WB, w, w2 + 4 * VL * l).reinterpretAsShorts();
                ShortVector x0 = ShortVector.fromArray(SS, q, k), x1 = ShortVector.fromArray(SS, q, k + 2 * VL);
                ShortVector x2 = ShortVector.fromArray(SS, q, k + 4 * VL), x3 = ShortVector.fromArray(SS, q, k + 6 * VL);
                a1 = a1.add(s1.and((short) 0xF).mul(x0)).add(s1.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(x1))
                        .add(s1.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(x2)).add(s1.lanewise(VectorOperators.LSHR, 12).mul(x3));
                a2 = a2.add(s2.and((short) 0xF).mul(x0)).add(s2.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(x1))
                        .add(s2.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(x2)).add(s2.lanewise(VectorOperators.LSHR, 12).mul(x3));
            }
            IntVector i1 = a1.reinterpretAsInts(), i2 = a2.reinterpretAsInts();   // each int: two shorts' sums
            IntVector p1 = i1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(i1.lanewise(VectorOperators.ASHR, 16));
            IntVector p2 = i2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(i2.lanewise(VectorOperators.ASHR, 16));
            // the conversion written out: Block32Ops.floats here was left uninlined (NodeCountInliningCutoff), boxed
            FloatVector step = FloatVector.broadcast(FS, steps[g]);
            t1 = ((FloatVector) p1.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(FS, ds, VL * g)).fma(step, t1);
            t2 = ((FloatVector) p2.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(FS, ds, nl + VL * g)).fma(step, t2);
        }
        y[o1] = t1.sub(FloatVector.fromArray(FS, ds, 2 * nl)).reduceLanes(VectorOperators.ADD);
        y[o2] = t2.sub(FloatVector.fromArray(FS, ds, 2 * nl + VL)).reduceLanes(VectorOperators.ADD);
    }

    /** Lanes 8..15 of a 16-lane vector: the second super-block of a 16-byte run of packed scales. */
    private static final VectorMask<Float> SECOND = VectorMask.fromLong(FS, 0xFF00);
    /** At 512 bits (two lanes per sub-block), lanes 0..7 and 8..15 of a vector of 16 sub-blocks' d·sc, each twice. */
    private static final VectorShuffle<Float> TWICE_LOW = VectorShuffle.fromOp(FS, i -> i / 2),
            TWICE_HIGH = VectorShuffle.fromOp(FS, i -> (VL / 2 + i / 2) % VL);

    /**
     * The packed rows at w[off1] and w[off2] with n = 8·blocks scales each: each lane's d·sc into ds[0 .. nl) and
     * ds[nl .. 2·nl) (nl = n·LS: a sub-block's d·sc LS times), and each row's mins' share Σ (dmin·m_j)·sums[j] into
     * ds[2·nl ..) and ds[2·nl + VL ..) as a vector (lanes summed by the GEMV's own reduction). The two rows go side by
     * side, as in dot2: one call per pair, each vector of sums loaded once for both, two independent chains.
     */
    private static void prepare(byte[] w, int off1, int off2, int n, float[] sums, float[] ds, int nl) {
        FloatVector mt1 = FloatVector.zero(FS), mt2 = mt1;
        int j = 0;
        for (; j + BS.length() <= n; j += BS.length()) {
            ByteVector s1 = ByteVector.fromArray(BS, w, off1 + j), m1 = ByteVector.fromArray(BS, w, off1 + n + j);
            ByteVector s2 = ByteVector.fromArray(BS, w, off2 + j), m2 = ByteVector.fromArray(BS, w, off2 + n + j);
            FloatVector d1 = perBlock(w, off1 + j), dmin1 = perBlock(w, off1 + n + j);
            FloatVector d2 = perBlock(w, off2 + j), dmin2 = perBlock(w, off2 + n + j);
            for (int p = 0; p < PARTS; p++) {
                FloatVector sm = FloatVector.fromArray(FS, sums, j + p * VL);
                FloatVector dsc1 = floats(ints(s1, p).lanewise(VectorOperators.AND, 0x3F)).mul(d1);
                FloatVector dsc2 = floats(ints(s2, p).lanewise(VectorOperators.AND, 0x3F)).mul(d2);
                if (LS == 1) {
                    dsc1.intoArray(ds, j + p * VL);
                    dsc2.intoArray(ds, nl + j + p * VL);
                } else {
                    dsc1.rearrange(TWICE_LOW).intoArray(ds, 2 * j);
                    dsc1.rearrange(TWICE_HIGH).intoArray(ds, 2 * j + VL);
                    dsc2.rearrange(TWICE_LOW).intoArray(ds, nl + 2 * j);
                    dsc2.rearrange(TWICE_HIGH).intoArray(ds, nl + 2 * j + VL);
                }
                mt1 = floats(ints(m1, p).lanewise(VectorOperators.AND, 0x3F)).mul(dmin1).fma(sm, mt1);
                mt2 = floats(ints(m2, p).lanewise(VectorOperators.AND, 0x3F)).mul(dmin2).fma(sm, mt2);
            }
        }
        mt1.intoArray(ds, 2 * nl);
        mt2.intoArray(ds, 2 * nl + VL);
        for (; j < n; j += 8) {                                 // at 512 bits, an odd last super-block
            float da = topHalf(w, off1 + j), dmina = topHalf(w, off1 + n + j);
            float db = topHalf(w, off2 + j), dminb = topHalf(w, off2 + n + j);
            for (int i = 0; i < 8; i++) {
                for (int c = 0; c < LS; c++) {
                    ds[LS * (j + i) + c] = da * FLOAT[w[off1 + j + i] & 0x3F];
                    ds[nl + LS * (j + i) + c] = db * FLOAT[w[off2 + j + i] & 0x3F];
                }
                ds[2 * nl] += dmina * FLOAT[w[off1 + n + j + i] & 0x3F] * sums[j + i];
                ds[2 * nl + VL] += dminb * FLOAT[w[off2 + n + j + i] & 0x3F] * sums[j + i];
            }
        }
    }

    /** Each lane's d (or dmin) for a vector of the packed scales (or mins) at w[at ..]: 8 lanes per super-block. */
    private static FloatVector perBlock(byte[] w, int at) {
        FloatVector d = FloatVector.broadcast(FS, topHalf(w, at));
        return VL <= 8 ? d : d.blend(topHalf(w, at + 8), SECOND);
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
