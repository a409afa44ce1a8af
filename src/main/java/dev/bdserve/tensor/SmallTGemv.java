package dev.bdserve.tensor;

import static dev.bdserve.tensor.Gemv.dotBf16Pairs;
import static dev.bdserve.tensor.Gemv.dotF16;
import static dev.bdserve.tensor.Gemv.dotF32;
import static dev.bdserve.tensor.Widening.bf16;
import static dev.bdserve.tensor.Widening.f16;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Products of a few tokens (2 ≤ T ≤ {@value MatMul#SMALL_T}), and of any T with matrices of fewer than
 * {@value MatMul#GEMM_MIN_ROWS} rows: a multi-token GEMV. Two weight rows are widened once per VL inputs and FMA'd
 * against four tokens' x at a time (8 accumulators, vectorized along the input dimension, horizontal reduction at
 * the end). For so few tokens this beats packing x for the GEMM (docs/bench/kernels.md).
 */
final class SmallTGemv {
    private SmallTGemv() {}

    /** Float species of the kernels ({@link VectorWidth}): a static final constant, so C2 compiles the vector code. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Shorts filling one float vector's bits (2·VL lanes): 16-bit weights loaded as int pairs. */
    static final VectorSpecies<Short> SP = VectorWidth.SHORT;

    /**
     * Rows [from, to) for 2 ≤ T ≤ {@value MatMul#SMALL_T} tokens (any T ≥ 1 is correct; x is {@link Widening#splitPairRows}(x)
     * for BF16 weights, as given otherwise): two weight rows at
     * a time (o and o + h, the two halves of the range walked side by side) are widened once per VL inputs and FMA'd against four tokens' x vectors (8 accumulators,
     * vectorized along the input dimension, horizontal reduction at the end); further token quads
     * re-read the two rows from L1. In a partial quad the missing tokens alias the last one and their
     * results are dropped.
     */
    static void gemvSmallT(Matrix w, float[] x, int T, float[] y, int from, int to) {
        int cols = w.cols(), rows = w.rows();
        float[] r = new float[8];                         // [2 rows][4 tokens] results
        int h = (to - from) / 2;                          // rows o and o+h together: two long streams (as in gemv)
        for (int o = from; o < from + h; o++) rowPairTokens(w, x, true, T, y, o, h, r);
        for (int o = from + 2 * h; o < to; o++)
            for (int t = 0; t < T; t++)
                y[t * rows + o] = switch (w.dtype()) {
                    case F32 -> dotF32(w.f32(), o * cols, x, t * cols, cols);
                    case BF16 -> dotBf16Pairs(w.bits(), o * cols, x, t * cols, cols);
                    case F16 -> dotF16(w.bits(), o * cols, x, t * cols, cols);
                };
    }

    /**
     * Rows [from, to) of a matrix with few rows (under {@value MatMul#GEMM_MIN_ROWS}: LoRA shrinks) for any T: rows o and
     * o + 1 (one contiguous run of the matrix) are read in place, widened in registers, and FMA'd against four tokens'
     * x as given, four tokens at a time (the last row of an odd range pairs with itself and its copy is dropped).
     * BF16 rows widen with the S2I form ({@link #smallTBf16Rows}): the even / odd pair form would need x split first,
     * which for a matrix this small costs more than the product; widening the pair into an fp32 scratch first was
     * slower (docs/bench/kernels.md).
     */
    static void gemvSmallRows(Matrix w, float[] x, int T, float[] y, int from, int to) {
        float[] r = new float[8];                         // [2 rows][4 tokens] results
        for (int o = from; o < to; o += 2)
            rowPairTokens(w, x, false, T, y, o, o + 1 < to ? 1 : 0, r);   // an odd range's last row pairs with itself
    }

    /**
     * Rows o and o + h of w for all T tokens, four at a time (the rows stay in L1 between quads; in a partial quad
     * the missing tokens alias the last one and their results are dropped), into y [T, rows]. h = 0 computes row o
     * alone. {@code splitX}: BF16 rows run against x split into even / odd pairs ({@link #smallTBf16}), else against
     * x as given ({@link #smallTBf16Rows}); F32 and F16 always take x as given. r: [8] scratch for the results.
     */
    private static void rowPairTokens(Matrix w, float[] x, boolean splitX, int T, float[] y, int o, int h, float[] r) {
        int cols = w.cols(), rows = w.rows();
        for (int q = 0; q < T; q += 4) {
            int nt = Math.min(4, T - q), last = (q + nt - 1) * cols;
            int x0 = q * cols, x1 = Math.min(x0 + cols, last), x2 = Math.min(x0 + 2 * cols, last), x3 = last;
            switch (w.dtype()) {
                case F32 -> smallTF32(w.f32(), cols, o, h, x, x0, x1, x2, x3, r);
                case BF16 -> {
                    if (splitX) smallTBf16(w.bits(), cols, o, h, x, x0, x1, x2, x3, r);
                    else smallTBf16Rows(w.bits(), cols, o, h, x, x0, x1, x2, x3, r);
                }
                case F16 -> smallTF16(w.bits(), cols, o, h, x, x0, x1, x2, x3, r);
            }
            for (int t = 0; t < nt; t++) {
                y[(q + t) * rows + o] = r[t];
                if (h != 0) y[(q + t) * rows + o + h] = r[4 + t];
            }
        }
    }

    /** As {@link #smallTF32} on BF16 rows o and o + h, widened with {@link Widening#bf16} against x as given (not split). */
    private static void smallTBf16Rows(short[] b, int cols, int o, int h, float[] x, int x0, int x1, int x2, int x3, float[] r) {
        int b0 = o * cols, b1 = b0 + h * cols;
        FloatVector s00 = FloatVector.zero(FS), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int bound = cols - cols % VL, i = 0;
        for (; i < bound; i += VL) {
            FloatVector w0 = bf16(b, b0 + i), w1 = bf16(b, b1 + i);
            FloatVector v = FloatVector.fromArray(FS, x, x0 + i); s00 = w0.fma(v, s00); s10 = w1.fma(v, s10);
            v = FloatVector.fromArray(FS, x, x1 + i); s01 = w0.fma(v, s01); s11 = w1.fma(v, s11);
            v = FloatVector.fromArray(FS, x, x2 + i); s02 = w0.fma(v, s02); s12 = w1.fma(v, s12);
            v = FloatVector.fromArray(FS, x, x3 + i); s03 = w0.fma(v, s03); s13 = w1.fma(v, s13);
        }
        smallTFinish(s00, s01, s02, s03, s10, s11, s12, s13, r);
        for (; i < cols; i++) smallTTail(Numerics.bf16ToFloat(b[b0 + i]), Numerics.bf16ToFloat(b[b1 + i]), x, i, x0, x1, x2, x3, r);
    }

    private static void smallTF32(float[] a, int cols, int o, int h, float[] x, int x0, int x1, int x2, int x3, float[] r) {
        int b0 = o * cols, b1 = b0 + h * cols;
        FloatVector s00 = FloatVector.zero(FS), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int bound = cols - cols % VL, i = 0;
        for (; i < bound; i += VL) {
            FloatVector w0 = FloatVector.fromArray(FS, a, b0 + i), w1 = FloatVector.fromArray(FS, a, b1 + i);
            FloatVector v = FloatVector.fromArray(FS, x, x0 + i); s00 = w0.fma(v, s00); s10 = w1.fma(v, s10);
            v = FloatVector.fromArray(FS, x, x1 + i); s01 = w0.fma(v, s01); s11 = w1.fma(v, s11);
            v = FloatVector.fromArray(FS, x, x2 + i); s02 = w0.fma(v, s02); s12 = w1.fma(v, s12);
            v = FloatVector.fromArray(FS, x, x3 + i); s03 = w0.fma(v, s03); s13 = w1.fma(v, s13);
        }
        smallTFinish(s00, s01, s02, s03, s10, s11, s12, s13, r);
        for (; i < cols; i++) smallTTail(a[b0 + i], a[b1 + i], x, i, x0, x1, x2, x3, r);
    }

    /**
     * Rows o and o+h of BF16 b against 4 tokens whose x rows (at x0..x3) are split into even / odd pairs
     * ({@link Widening#splitPairs}): each 2·VL weights load as VL ints, even weights int &lt;&lt; 16, odd ones
     * int &amp; 0xFFFF0000 (no cross-lane widening, as in the GEMV).
     */
    private static void smallTBf16(short[] b, int cols, int o, int h, float[] xp, int x0, int x1, int x2, int x3, float[] r) {
        int b0 = o * cols, b1 = b0 + h * cols;
        FloatVector s00 = FloatVector.zero(FS), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int bound = cols - cols % (2 * VL), i = 0;
        for (; i < bound; i += 2 * VL) {
            IntVector p0 = ShortVector.fromArray(SP, b, b0 + i).reinterpretAsInts();
            IntVector p1 = ShortVector.fromArray(SP, b, b1 + i).reinterpretAsInts();
            FloatVector e0 = p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), d0 = p0.and(0xFFFF0000).reinterpretAsFloats();
            FloatVector e1 = p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), d1 = p1.and(0xFFFF0000).reinterpretAsFloats();
            FloatVector ve = FloatVector.fromArray(FS, xp, x0 + i), vo = FloatVector.fromArray(FS, xp, x0 + i + VL);
            s00 = d0.fma(vo, e0.fma(ve, s00)); s10 = d1.fma(vo, e1.fma(ve, s10));
            ve = FloatVector.fromArray(FS, xp, x1 + i); vo = FloatVector.fromArray(FS, xp, x1 + i + VL);
            s01 = d0.fma(vo, e0.fma(ve, s01)); s11 = d1.fma(vo, e1.fma(ve, s11));
            ve = FloatVector.fromArray(FS, xp, x2 + i); vo = FloatVector.fromArray(FS, xp, x2 + i + VL);
            s02 = d0.fma(vo, e0.fma(ve, s02)); s12 = d1.fma(vo, e1.fma(ve, s12));
            ve = FloatVector.fromArray(FS, xp, x3 + i); vo = FloatVector.fromArray(FS, xp, x3 + i + VL);
            s03 = d0.fma(vo, e0.fma(ve, s03)); s13 = d1.fma(vo, e1.fma(ve, s13));
        }
        smallTFinish(s00, s01, s02, s03, s10, s11, s12, s13, r);
        for (; i < cols; i++) smallTTail(Numerics.bf16ToFloat(b[b0 + i]), Numerics.bf16ToFloat(b[b1 + i]), xp, i, x0, x1, x2, x3, r);
    }

    private static void smallTF16(short[] b, int cols, int o, int h, float[] x, int x0, int x1, int x2, int x3, float[] r) {
        int b0 = o * cols, b1 = b0 + h * cols;
        FloatVector s00 = FloatVector.zero(FS), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int bound = cols - cols % VL, i = 0;
        for (; i < bound; i += VL) {
            FloatVector w0 = f16(b, b0 + i), w1 = f16(b, b1 + i);
            FloatVector v = FloatVector.fromArray(FS, x, x0 + i); s00 = w0.fma(v, s00); s10 = w1.fma(v, s10);
            v = FloatVector.fromArray(FS, x, x1 + i); s01 = w0.fma(v, s01); s11 = w1.fma(v, s11);
            v = FloatVector.fromArray(FS, x, x2 + i); s02 = w0.fma(v, s02); s12 = w1.fma(v, s12);
            v = FloatVector.fromArray(FS, x, x3 + i); s03 = w0.fma(v, s03); s13 = w1.fma(v, s13);
        }
        smallTFinish(s00, s01, s02, s03, s10, s11, s12, s13, r);
        for (; i < cols; i++) smallTTail(Float.float16ToFloat(b[b0 + i]), Float.float16ToFloat(b[b1 + i]), x, i, x0, x1, x2, x3, r);
    }

    private static void smallTFinish(FloatVector s00, FloatVector s01, FloatVector s02, FloatVector s03,
                                     FloatVector s10, FloatVector s11, FloatVector s12, FloatVector s13, float[] r) {
        r[0] = s00.reduceLanes(VectorOperators.ADD); r[1] = s01.reduceLanes(VectorOperators.ADD);
        r[2] = s02.reduceLanes(VectorOperators.ADD); r[3] = s03.reduceLanes(VectorOperators.ADD);
        r[4] = s10.reduceLanes(VectorOperators.ADD); r[5] = s11.reduceLanes(VectorOperators.ADD);
        r[6] = s12.reduceLanes(VectorOperators.ADD); r[7] = s13.reduceLanes(VectorOperators.ADD);
    }

    private static void smallTTail(float w0, float w1, float[] x, int i, int x0, int x1, int x2, int x3, float[] r) {
        r[0] = Math.fma(w0, x[x0 + i], r[0]); r[1] = Math.fma(w0, x[x1 + i], r[1]);
        r[2] = Math.fma(w0, x[x2 + i], r[2]); r[3] = Math.fma(w0, x[x3 + i], r[3]);
        r[4] = Math.fma(w1, x[x0 + i], r[4]); r[5] = Math.fma(w1, x[x1 + i], r[5]);
        r[6] = Math.fma(w1, x[x2 + i], r[6]); r[7] = Math.fma(w1, x[x3 + i], r[7]);
    }
}
