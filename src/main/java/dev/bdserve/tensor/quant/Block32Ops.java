package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import dev.bdserve.tensor.VectorWidth;

import static dev.bdserve.tensor.quant.BlockFormat.BS;
import static dev.bdserve.tensor.quant.BlockFormat.PARTS;
import static dev.bdserve.tensor.quant.BlockFormat.VL;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Pieces shared by the kernels of the 32-weight formats (Q4_0, Q4_1, Q5_0, Q5_1), and the shape those kernels share;
 * the K-quants (Q4_K, Q5_K, Q6_K) use its widening and loads too.
 *
 * <p>Nibbles are taken from bytes widened to ints ({@link #ints}): masking and shifting ints costs one instruction
 * each, while x86 has no shift of byte lanes, which made the byte-lane form the slowest step. The fp16 fields and
 * the fifth-bit words are read with one load each through byte-array views ({@link #fp16}, {@link #word}).
 *
 * <p>Each format's GEMV ({@code dot2}) and decoder ({@code decode2}) do their work two rows or two blocks at a time in
 * a private static method of more than 325 bytes of bytecode (C2's {@code FreqInlineSize}), so C2 compiles it on its
 * own rather than inlining it into its caller. Inlined a few calls deep (the panel loop of a T &gt; 1 product), the
 * Vector API's own call chains pass {@code MaxInlineLevel} and the vectors are left boxed: 0.2–0.6 GB/s instead of
 * 9–13 in a throwaway harness (docs/bench/kernels.md). Two rows, not four: four rows side by side grew past C2's
 * node budget for inlining ({@code NodeCountInliningCutoff}), with the same boxing.
 */
final class Block32Ops {
    private Block32Ops() {}

    /** Ints with the lanes of {@link BlockFormat#FS}. */
    static final VectorSpecies<Integer> IS = VectorWidth.INT;

    private static final VarHandle LE16 = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LE32 = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LE64 = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** The fp16 stored little-endian at b[at]. */
    static float fp16(byte[] b, int at) { return Float.float16ToFloat((short) LE16.get(b, at)); }

    /** The little-endian 32-bit word at b[at]. */
    static int word(byte[] b, int at) { return (int) LE32.get(b, at); }

    /** The little-endian 64-bit word at b[at]. */
    static long dword(byte[] b, int at) { return (long) LE64.get(b, at); }

    /** Stores the low 16 bits of v little-endian at b[at]. */
    static void putShort(byte[] b, int at, int v) { LE16.set(b, at, (short) v); }

    /** Stores v little-endian at b[at]. */
    static void putDword(byte[] b, int at, long v) { LE64.set(b, at, v); }

    /**
     * Part p of a byte vector zero-extended to VL ints. The conversion is always asked for part 0: the Vector API's
     * code for another part is deep enough to stop C2's inlining ("inlining too deep") and leave the vectors boxed,
     * so at 128 bits, where a byte vector holds two parts, part 1 is first moved down by a fixed shuffle. At 256 and
     * 512 bits (one part) C2 folds the test away.
     */
    static IntVector ints(ByteVector v, int p) {
        ByteVector part = PARTS == 1 || p == 0 ? v : v.rearrange(UPPER);
        return (IntVector) part.convertShape(VectorOperators.ZERO_EXTEND_B2I, IS, 0);
    }

    /** Part p of a byte vector sign-extended to VL ints, as {@link #ints} zero-extends it. */
    static IntVector signedInts(ByteVector v, int p) {
        ByteVector part = PARTS == 1 || p == 0 ? v : v.rearrange(UPPER);
        return (IntVector) part.convertShape(VectorOperators.B2I, IS, 0);
    }

    /**
     * x[0 .. n) with each run of VL·m values transposed as a [VL, m] matrix: x[k0 + m·i + v] at t[k0 + VL·v + i], so
     * that a vector of t holds element v of VL runs of m (the packed Q6_K weights' order).
     */
    static float[] transposed(float[] x, int n, int m) {
        float[] t = new float[n];
        for (int k0 = 0; k0 < n; k0 += VL * m)
            for (int i = 0; i < VL; i++)
                for (int v = 0, at = k0 + m * i; v < m; v++) t[k0 + VL * v + i] = x[at + v];
        return t;
    }

    /**
     * The [VL, m] matrix in t (row v at VL·v) written transposed, row i of the result at dst[off + m·i]: packed Q6_K
     * weights back in their row's order ({@link #transposed} undone), for {@code Weight.row}, where
     * {@link #untransposeInPlace} does not apply.
     */
    static void untransposed(float[] t, int m, float[] dst, int off) {
        for (int i = 0; i < VL; i++)
            for (int v = 0; v < m; v++) dst[off + m * i + v] = t[VL * v + i];
    }

    /** Whether {@link #untransposeInPlace} takes [VL, m] matrices: at 512 bits, for m = 16. */
    static boolean inPlace(int m) { return VL == 16 && m == 16; }

    /**
     * The [16, 16] matrix at a[off ..] (row v at off + 16·v) transposed in place ({@link #inPlace}), as {@link
     * #untransposed} writes it: four passes of two-vector permutes instead of 256 scalar moves. Pass d (8, 4, 2, 1)
     * trades, for rows r and r + d (r &amp; d = 0), the d-wide column blocks of row r + d left of the diagonal blocks
     * with those of row r right of them; each pass reads both rows before it writes them.
     */
    static void untransposeInPlace(float[] a, int off) {
        swapBlocks(a, off, a, off, 8, LOW8, HIGH8);
        swapBlocks(a, off, a, off, 4, LOW4, HIGH4);
        swapBlocks(a, off, a, off, 2, LOW2, HIGH2);
        swapBlocks(a, off, a, off, 1, LOW1, HIGH1);
    }

    /** One pass of {@link #untransposeInPlace}: blocks of width d traded between rows r and r + d of a at aOff, into b (a itself allowed). */
    private static void swapBlocks(float[] a, int aOff, float[] b, int bOff, int d, IntVector low, IntVector high) {
        for (int p = 0; p < 8; p++) {
            int r = p / d * 2 * d + p % d;
            IntVector x = FloatVector.fromArray(FS16, a, aOff + 16 * r).reinterpretAsInts();
            IntVector y = FloatVector.fromArray(FS16, a, aOff + 16 * (r + d)).reinterpretAsInts();
            low.selectFrom(x, y).reinterpretAsFloats().intoArray(b, bOff + 16 * r);
            high.selectFrom(x, y).reinterpretAsFloats().intoArray(b, bOff + 16 * (r + d));
        }
    }

    /** 16 floats (the transposes run only where VL is 16, so this is the kernels' species there). */
    private static final jdk.incubator.vector.VectorSpecies<Float> FS16 = FloatVector.SPECIES_512;
    private static final IntVector LOW8 = swapIndexes(8, false), HIGH8 = swapIndexes(8, true), LOW4 = swapIndexes(4, false),
            HIGH4 = swapIndexes(4, true), LOW2 = swapIndexes(2, false), HIGH2 = swapIndexes(2, true),
            LOW1 = swapIndexes(1, false), HIGH1 = swapIndexes(1, true);

    /** For {@link #swapBlocks}' rows x (r) and y (r + d): lanes of the new row r (high: r + d), as indexes into x, y. */
    private static IntVector swapIndexes(int d, boolean high) {
        int[] ix = new int[16];
        for (int l = 0; l < 16; l++) ix[l] = (l & d) == 0 ? (high ? l + d : l) : (high ? 16 + l : 16 + l - d);
        return IntVector.fromArray(IntVector.SPECIES_512, ix, 0);
    }

    /** Byte lanes VL.. moved to lanes 0..: the second part of a byte vector at 128 bits. */
    private static final VectorShuffle<Byte> UPPER = VectorShuffle.fromOp(BS, i -> (i + VL) % BS.length());

    /**
     * The largest activation of the integer GEMVs (Q4_K, Q6_K), as llama.cpp's Q8_K: their 16-bit lanes hold at most 16
     * products of 15·127 (Q4_K) or 8 of 32·127 (Q6_K).
     */
    static final int XMAX = 127;

    /**
     * x[at .. at + n) as integers q, |q| ≤ {@value #XMAX}, times the returned step max|x| / XMAX: q = round(x / step),
     * an error of at most step / 2 each. A run with a NaN or infinite value gets a NaN step (NaN products, as fp32
     * would give), one of zeros a step of 0.
     */
    static float quantize(float[] x, int at, int n, int[] q) {
        float amax = 0;
        for (int i = 0; i < n; i++) amax = Math.max(amax, Math.abs(x[at + i]));
        if (!(amax > 0) || amax == Float.POSITIVE_INFINITY) {
            java.util.Arrays.fill(q, 0, n, 0);
            return amax == 0 ? 0 : Float.NaN;
        }
        float inv = XMAX / amax;
        for (int i = 0; i < n; i++) q[i] = Math.clamp(Math.round(x[at + i] * inv), -XMAX, XMAX);
        return amax / XMAX;
    }

    /**
     * x[0 .. n) {@link #quantize}d per group of order.length values for an integer GEMV: q[g·len + p] gets the integer
     * of value order[p] of group g (the kernel's order), and sums, when not null, Σ q·step of each {@value
     * BlockFormat#SUM_GROUP} values in the row's order. Returns each group's step.
     */
    static float[] quantizeInOrder(float[] x, int n, int[] order, short[] q, float[] sums) {
        int len = order.length;
        float[] steps = new float[n / len];
        int[] qi = new int[len];                                  // one group's integers in the row's order
        for (int g = 0; g < steps.length; g++) {
            float step = steps[g] = quantize(x, g * len, len, qi);
            for (int p = 0; p < len; p++) q[g * len + p] = (short) qi[order[p]];
            if (sums == null) continue;
            for (int s = 0; s < len / BlockFormat.SUM_GROUP; s++) {
                int sum = 0;
                for (int i = 0; i < BlockFormat.SUM_GROUP; i++) sum += qi[BlockFormat.SUM_GROUP * s + i];
                sums[(g * len) / BlockFormat.SUM_GROUP + s] = sum * step;
            }
        }
        return steps;
    }

    /** x[0 .. n) as an integer GEMV sees it: each run of {@code group} values {@link #quantize}d, times its step. */
    static float[] quantized(float[] x, int n, int group) {
        float[] out = new float[n];
        int[] q = new int[group];
        for (int g = 0; g < n / group; g++) {
            float step = quantize(x, g * group, group, q);
            for (int i = 0; i < group; i++) out[g * group + i] = q[i] * step;
        }
        return out;
    }

    /** Ints to floats. */
    static FloatVector floats(IntVector v) { return (FloatVector) v.convert(VectorOperators.I2F, 0); }

    /** Lanes whose weight has its bit set in {@code bits}: weight j + lane for bit j + lane (ggml's {@code qh}). */
    static VectorMask<Integer> bitsFrom(int bits, int j) { return VectorMask.fromLong(IS, bits >>> j); }

    /**
     * a + m as ggml's {@code q·d + m} rounds it, a being q·d; when m is NaN ({@code mIsNaN}), a lane whose a is NaN
     * too keeps a's NaN, as x86's {@code addss} does with its first operand (the slow twin's rule, {@code
     * GgmlCodec}), whichever way round the vector add is compiled. Finite inputs take the plain add.
     */
    static FloatVector plus(FloatVector a, FloatVector m, boolean mIsNaN) {
        FloatVector s = a.add(m);
        return mIsNaN ? s.blend(a, a.test(VectorOperators.IS_NAN)) : s;
    }
}
