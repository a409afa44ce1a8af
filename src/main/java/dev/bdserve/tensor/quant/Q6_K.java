package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import dev.bdserve.tensor.VectorWidth;

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
 * {@link QuantMatrix} keeps its rows packed for the GEMV (the comment at {@link #pack}), which multiplies the quants
 * by the token's activations quantized per group ({@link Block32Ops#quantize}) in 16-bit lanes, as Q4_K's does.
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
     * groups of 16·VL weights (one super-block at 512 bits, 2 at 256, 4 at 128): VL sub-blocks of 16, each quant as
     * s = q ^ 32 (q − 32 as a 6-bit two's complement number). A group is 3 loads of 4·VL bytes, read as 2·VL shorts:
     * short lane 2m + p (p < 2) holds weights 8p .. 8p+7 of sub-block m, so int lane m holds sub-block m only. In load
     * l the short keeps s of weight 8p + 2l in bits 4–9 and of 8p + 2l + 1 in bits 10–15: (short << 6) >> 10 and
     * short >> 10 give q − 32. Bits 0–3 of the three shorts hold weights 8p + 6 (bits 0–3 of s in load 0's, 4–5 in
     * load 1's bits 0–1) and 8p + 7 (0–1 in load 1's bits 2–3, 2–5 in load 2's). So the GEMV's short lanes each take
     * 8 products of one sub-block per group (8·32·127 fits a short) and an int lane's two halves sum to one
     * sub-block's. Decoded to floats (decodePanel: in int lanes, a field by two shifts), weight e of lane m's
     * sub-block lands at e·VL + m: the order of {@link #transposed}.
     */

    /** Weights and bytes per group of quants. */
    static final int GROUP = 16 * VL, GROUP_BYTES = 12 * VL;
    /** Bytes with the bits of a float vector: a load of quants. */
    private static final VectorSpecies<Byte> WORDS = VectorSpecies.of(byte.class, FS.vectorShape());
    /** Shorts at the kernels' width. */
    private static final VectorSpecies<Short> SS = VectorWidth.SHORT;

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
                    for (int l = 0; l < 3; l++)
                        for (int j = 0; j < 2 * VL; j++) {          // short lane j: sub-block j / 2, weights 8·(j % 2) ..
                            int e = g * GROUP + 16 * (j / 2) + 8 * (j % 2), s6 = s[e + 6], s7 = s[e + 7];
                            int spare = l == 0 ? s6 & 0xF : l == 1 ? s6 >> 4 | (s7 & 3) << 2 : s7 >> 2;
                            int v = spare | s[e + 2 * l] << 4 | s[e + 2 * l + 1] << 10;
                            Block32Ops.putShort(data, off + 18 * blocks + 192 * b + GROUP_BYTES * g + 4 * VL * l + 2 * j, v);
                        }
                System.arraycopy(file, at + SCALES, data, off + 16 * b, 16);
                data[off + 16 * blocks + 2 * b] = file[at + D];
                data[off + 16 * blocks + 2 * b + 1] = file[at + D + 1];
            }
        return data;
    }

    /** The quants at w[at ..] as VL ints, each two shorts. */
    private static IntVector words(byte[] w, int at) { return ByteVector.fromArray(WORDS, w, at).reinterpretAsInts(); }

    /** The 6-bit signed field of each int at bits [26 − shift, 32 − shift): (word << shift) >> 26. */
    private static IntVector quant(IntVector word, int shift) {
        return (shift == 0 ? word : word.lanewise(VectorOperators.LSHL, shift)).lanewise(VectorOperators.ASHR, 26);
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

    @Override void decodePacked(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode(src, off, dst, dstOff, blocks, true); }

    @Override void decodePanel(byte[] src, int off, float[] dst, int dstOff, int blocks) { decode(src, off, dst, dstOff, blocks, false); }

    /** The packed row's weights: in the row's order ({@code natural}), else in the packed order (decodePanel). */
    private static void decode(byte[] src, int off, float[] dst, int dstOff, int blocks, boolean natural) {
        boolean scratch = natural && !Block32Ops.inPlace(16);      // else the packed order is untransposed where it lands
        float[] t = scratch ? new float[GROUP] : null;
        float[] d = new float[VL];
        for (int k0 = 0, at = off + 18 * blocks; k0 < blocks * QK; k0 += GROUP, at += GROUP_BYTES) {
            float dd = fp16(src, off + 16 * blocks + 2 * (k0 / QK));  // each lane's sub-block's d·sc, in scalars:
            for (int i = 0; i < VL; i++) d[i] = src[off + (k0 >> 4) + i] * dd; // decode inlines deep into a GEMM's loop
            decodeGroup(src, at, d, scratch ? t : dst, scratch ? 0 : dstOff + k0);
            if (scratch) Block32Ops.untransposed(t, 16, dst, dstOff + k0);
            else if (natural) Block32Ops.untransposeInPlace(dst, dstOff + k0);
        }
    }

    /**
     * The group of quants at src[at] times the lanes' d·sc (ds[0 .. VL)), weight e of lane m's sub-block at out[o + e·VL
     * + m]: the twelve fields held whole in a short by two shifts each, the four spread ones by five operations. Loops,
     * not sixteen written-out lines: C2 inlines each helper call site once before it unrolls, where sixteen call sites
     * passed its node budget (NodeCountInliningCutoff) and left the vectors boxed.
     */
    private static void decodeGroup(byte[] src, int at, float[] ds, float[] out, int o) {
        FloatVector d = FloatVector.fromArray(FS, ds, 0);           // (d·sc)·(q − 32), as ggml
        for (int l = 0; l < 3; l++) {
            IntVector w = words(src, at + 4 * VL * l);
            for (int f = 0; f < 4; f++)                             // bits 4–9, 10–15 of the low short, then the high
                floats(quant(w, f < 2 ? 22 - 6 * f : 18 - 6 * f)).mul(d).intoArray(out, o + (2 * l + (f & 1) + 8 * (f >> 1)) * VL);
        }
        IntVector w0 = words(src, at), w1 = words(src, at + 4 * VL), w2 = words(src, at + 8 * VL);
        for (int p = 0; p < 2; p++) {                               // weights 8p + 6, 8p + 7: the low short, the high
            floats(quant(w1, 30 - 16 * p).and(~0xF).or(w0.lanewise(VectorOperators.LSHR, 16 * p).and(0xF))).mul(d)
                    .intoArray(out, o + (8 * p + 6) * VL);
            floats(quant(w2, 28 - 16 * p).and(~3).or(w1.lanewise(VectorOperators.LSHR, 2 + 16 * p).and(3))).mul(d)
                    .intoArray(out, o + (8 * p + 7) * VL);
        }
    }

    /**
     * Super-blocks per pass over the rows at most: rows longer than 4096 weights (ffn_down's 8192) are done in column
     * chunks, so the chunk of x stays in L1 beside the streamed weights; with all 32 KB of fp32 x per pass the
     * GEMV ran at half speed (7.5 against 15.3 Gweights/s, 2048×8192 from DRAM, one thread).
     */
    static final int CHUNK = 16;

    /** QX[2·VL·v + j]: the weight of a group whose quantized activation the GEMV multiplies by field v of short lane j. */
    private static final int[] QX = new int[GROUP];
    static {
        for (int v = 0; v < 8; v++)
            for (int j = 0; j < 2 * VL; j++) QX[2 * VL * v + j] = 16 * (j / 2) + 8 * (j % 2) + v;
    }

    /** x[0 .. n) quantized per group ({@link Block32Ops#quantize}), in QX's order, with each group's step. */
    @Override Activations gemvActivations(float[] x, int n) {
        short[] q = new short[n];                                // [n], each group in QX's order
        return new Activations(null, null, q, Block32Ops.quantizeInOrder(x, n, QX, q, null), GROUP);
    }

    @Override float[] gemvInput(float[] x, int n) { return Block32Ops.quantized(x, n, GROUP); }

    @Override void gemv(byte[] w, int blocks, Activations a, float[] y, int from, int to) {
        int rowBytes = blocks * BYTES;
        float[] ds = new float[16 * blocks];
        int chunks = (blocks + CHUNK - 1) / CHUNK, size = (blocks + chunks - 1) / chunks;
        for (int c0 = 0; c0 < blocks; c0 += size) {
            int c1 = Math.min(blocks, c0 + size);
            for (int o = from; o < to; o++) {
                scales(w, o * rowBytes, blocks, c0, c1, ds);
                dot(w, o * rowBytes, blocks, c0, c1, a.q(), a.scales(), ds, y, o);
            }
        }
    }

    @Override float[] activations(float[] x, int n) { return transposed(x, n); }

    /** x[0 .. n) with each group's weights in the packed order: weight v of the group's sub-block i at v·VL + i. */
    static float[] transposed(float[] x, int n) { return Block32Ops.transposed(x, n, 16); }

    /**
     * Super-blocks c0 .. c1 of the packed row at w[off] against the quantized activations q (steps: one per group):
     * per group, each short lane's 8 products (q − 32)·x summed in shorts, the halves of each int added (a sub-block's
     * Σ), converted and scaled by the group's d·sc from ds and its step; set into y[o] for the first chunk, else
     * added. (More than 325 bytes of bytecode, C2's FreqInlineSize, so that C2 compiles it on its own. Two rows side
     * by side, x loaded once for both, were no faster.)
     */
    private static void dot(byte[] w, int off, int blocks, int c0, int c1, short[] q, float[] steps, float[] ds, float[] y, int o) {
        FloatVector t = FloatVector.zero(FS);
        for (int k0 = c0 * QK, at = off + 18 * blocks + 192 * c0; k0 < c1 * QK; k0 += GROUP, at += GROUP_BYTES) {
            ShortVector l0 = ByteVector.fromArray(WORDS, w, at).reinterpretAsShorts();
            ShortVector l1 = ByteVector.fromArray(WORDS, w, at + 4 * VL).reinterpretAsShorts();
            ShortVector l2 = ByteVector.fromArray(WORDS, w, at + 8 * VL).reinterpretAsShorts();
            ShortVector a = l0.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 10).mul(ShortVector.fromArray(SS, q, k0))
                    .add(l0.lanewise(VectorOperators.ASHR, 10).mul(ShortVector.fromArray(SS, q, k0 + 2 * VL)));
            ShortVector b = l1.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 10).mul(ShortVector.fromArray(SS, q, k0 + 4 * VL))
                    .add(l1.lanewise(VectorOperators.ASHR, 10).mul(ShortVector.fromArray(SS, q, k0 + 6 * VL)));
            a = a.add(l2.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 10).mul(ShortVector.fromArray(SS, q, k0 + 8 * VL)))
                    .add(l2.lanewise(VectorOperators.ASHR, 10).mul(ShortVector.fromArray(SS, q, k0 + 10 * VL)));
            ShortVector f6 = l1.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 10).or(l0.and((short) 0xF));
            ShortVector f7 = l2.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 10)
                    .or(l1.lanewise(VectorOperators.LSHR, 2).and((short) 3));
            b = b.add(f6.mul(ShortVector.fromArray(SS, q, k0 + 12 * VL))).add(f7.mul(ShortVector.fromArray(SS, q, k0 + 14 * VL)));
            IntVector i = a.add(b).reinterpretAsInts();            // each int: one sub-block's two short lanes
            IntVector sum = i.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(i.lanewise(VectorOperators.ASHR, 16));
            t = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(FS, ds, k0 >> 4))
                    .fma(FloatVector.broadcast(FS, steps[k0 / GROUP]), t);
        }
        float p = t.reduceLanes(VectorOperators.ADD);
        y[o] = c0 == 0 ? p : y[o] + p;
    }
}
