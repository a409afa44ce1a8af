package dev.bdserve.tensor;

import static dev.bdserve.tensor.Widening.bf16;
import static dev.bdserve.tensor.Widening.f16;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The T == 1 product (GEMV) y = w · x for F32, BF16 and F16 weights, and the dot products of single rows. Four
 * weight rows at a time, vectorized along the input dimension: each x vector is loaded once and used for four rows,
 * with one horizontal reduction per row at the end. BF16 rows are widened in pairs against x split by
 * {@link Widening#splitPairs} (no cross-lane step); F16 rows with the S2I form ({@link Widening#f16}) against x as
 * given, because their pair form was slower (docs/bench/kernels.md). Memory-bound: it streams the weights once.
 */
final class Gemv {
    private Gemv() {}

    /** Float species of the kernels ({@link VectorWidth}): a static final constant, so C2 compiles the vector code. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Shorts filling one float vector's bits (2·VL lanes): 16-bit weights loaded as int pairs. */
    static final VectorSpecies<Short> SP = VectorWidth.SHORT;

    /**
     * GEMV rows [from, to): x [cols] as given, xp = {@link Widening#splitPairs}(x) for 16-bit weights. The range is
     * cut into 4 equal quarters walked side by side (rows o, o+q, o+2q, o+3q together): each quarter is one
     * long contiguous stream, which the hardware prefetchers follow far better than 4 adjacent short rows
     * (docs/bench/kernels.md).
     */
    static void gemv(Matrix w, float[] x, float[] xp, float[] y, int from, int to) {
        int q = (to - from) / 4, rest = from + 4 * q, cols = w.cols();
        switch (w.dtype()) {
            case F32 -> {
                float[] a = w.f32();
                for (int o = from; o < from + q; o++) gemvF32x4(a, cols, q, x, y, o);
                for (int o = rest; o < to; o++) y[o] = dotF32(a, o * cols, x, 0, cols);
            }
            case BF16 -> {
                short[] b = w.bits();
                for (int o = from; o < from + q; o++) gemvBf16x4(b, cols, q, xp, y, o);
                for (int o = rest; o < to; o++) y[o] = dotBf16(b, o * cols, x, 0, cols);
            }
            case F16 -> {
                short[] b = w.bits();
                for (int o = from; o < from + q; o++) gemvF16x4(b, cols, q, x, y, o);
                for (int o = rest; o < to; o++) y[o] = dotF16(b, o * cols, x, 0, cols);
            }
        }
    }

    /** y[o + k·q] = row o + k·q of a [*, cols] · x[0..cols), k = 0..3. */
    private static void gemvF32x4(float[] a, int cols, int q, float[] x, float[] y, int o) {
        int b0 = o * cols, b1 = b0 + q * cols, b2 = b1 + q * cols, b3 = b2 + q * cols;
        FloatVector s0 = FloatVector.zero(FS), s1 = s0, s2 = s0, s3 = s0;
        int bound = cols - cols % VL, i = 0;
        for (; i < bound; i += VL) {
            FloatVector xv = FloatVector.fromArray(FS, x, i);
            s0 = FloatVector.fromArray(FS, a, b0 + i).fma(xv, s0);
            s1 = FloatVector.fromArray(FS, a, b1 + i).fma(xv, s1);
            s2 = FloatVector.fromArray(FS, a, b2 + i).fma(xv, s2);
            s3 = FloatVector.fromArray(FS, a, b3 + i).fma(xv, s3);
        }
        float r0 = s0.reduceLanes(VectorOperators.ADD), r1 = s1.reduceLanes(VectorOperators.ADD);
        float r2 = s2.reduceLanes(VectorOperators.ADD), r3 = s3.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float xi = x[i];
            r0 = Math.fma(a[b0 + i], xi, r0);
            r1 = Math.fma(a[b1 + i], xi, r1);
            r2 = Math.fma(a[b2 + i], xi, r2);
            r3 = Math.fma(a[b3 + i], xi, r3);
        }
        y[o] = r0; y[o + q] = r1; y[o + 2 * q] = r2; y[o + 3 * q] = r3;
    }

    /**
     * y[o + k·q] = row o + k·q of BF16 b [*, cols] · x (k = 0..3), with xp = splitPairs(x): each 2·VL weights are
     * loaded as VL ints; even weights are int &lt;&lt; 16, odd ones int &amp; 0xFFFF0000 (no cross-lane
     * widening), FMA'd with the even / odd halves of xp into 8 accumulators.
     */
    private static void gemvBf16x4(short[] b, int cols, int q, float[] xp, float[] y, int o) {
        int b0 = o * cols, b1 = b0 + q * cols, b2 = b1 + q * cols, b3 = b2 + q * cols;
        FloatVector e0 = FloatVector.zero(FS), e1 = e0, e2 = e0, e3 = e0, d0 = e0, d1 = e0, d2 = e0, d3 = e0;
        int bound = cols - cols % (2 * VL), i = 0;
        for (; i < bound; i += 2 * VL) {
            FloatVector xe = FloatVector.fromArray(FS, xp, i), xo = FloatVector.fromArray(FS, xp, i + VL);
            IntVector p0 = ShortVector.fromArray(SP, b, b0 + i).reinterpretAsInts();
            IntVector p1 = ShortVector.fromArray(SP, b, b1 + i).reinterpretAsInts();
            IntVector p2 = ShortVector.fromArray(SP, b, b2 + i).reinterpretAsInts();
            IntVector p3 = ShortVector.fromArray(SP, b, b3 + i).reinterpretAsInts();
            e0 = p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, e0);
            d0 = p0.and(0xFFFF0000).reinterpretAsFloats().fma(xo, d0);
            e1 = p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, e1);
            d1 = p1.and(0xFFFF0000).reinterpretAsFloats().fma(xo, d1);
            e2 = p2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, e2);
            d2 = p2.and(0xFFFF0000).reinterpretAsFloats().fma(xo, d2);
            e3 = p3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, e3);
            d3 = p3.and(0xFFFF0000).reinterpretAsFloats().fma(xo, d3);
        }
        float r0 = e0.add(d0).reduceLanes(VectorOperators.ADD), r1 = e1.add(d1).reduceLanes(VectorOperators.ADD);
        float r2 = e2.add(d2).reduceLanes(VectorOperators.ADD), r3 = e3.add(d3).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float xi = xp[i];
            r0 = Math.fma(Numerics.bf16ToFloat(b[b0 + i]), xi, r0);
            r1 = Math.fma(Numerics.bf16ToFloat(b[b1 + i]), xi, r1);
            r2 = Math.fma(Numerics.bf16ToFloat(b[b2 + i]), xi, r2);
            r3 = Math.fma(Numerics.bf16ToFloat(b[b3 + i]), xi, r3);
        }
        y[o] = r0; y[o + q] = r1; y[o + 2 * q] = r2; y[o + 3 * q] = r3;
    }

    /** As {@link #gemvBf16x4} for F16 weights, widened with the S2I form {@link Widening#f16} (x not split). */
    private static void gemvF16x4(short[] b, int cols, int q, float[] x, float[] y, int o) {
        int b0 = o * cols, b1 = b0 + q * cols, b2 = b1 + q * cols, b3 = b2 + q * cols;
        FloatVector s0 = FloatVector.zero(FS), s1 = s0, s2 = s0, s3 = s0;
        int bound = cols - cols % VL, i = 0;
        for (; i < bound; i += VL) {
            FloatVector xv = FloatVector.fromArray(FS, x, i);
            s0 = f16(b, b0 + i).fma(xv, s0);
            s1 = f16(b, b1 + i).fma(xv, s1);
            s2 = f16(b, b2 + i).fma(xv, s2);
            s3 = f16(b, b3 + i).fma(xv, s3);
        }
        float r0 = s0.reduceLanes(VectorOperators.ADD), r1 = s1.reduceLanes(VectorOperators.ADD);
        float r2 = s2.reduceLanes(VectorOperators.ADD), r3 = s3.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float xi = x[i];
            r0 = Math.fma(Float.float16ToFloat(b[b0 + i]), xi, r0);
            r1 = Math.fma(Float.float16ToFloat(b[b1 + i]), xi, r1);
            r2 = Math.fma(Float.float16ToFloat(b[b2 + i]), xi, r2);
            r3 = Math.fma(Float.float16ToFloat(b[b3 + i]), xi, r3);
        }
        y[o] = r0; y[o + q] = r1; y[o + 2 * q] = r2; y[o + 3 * q] = r3;
    }

    /** Σ a[aOff+i]·x[xOff+i], i &lt; n. */
    static float dotF32(float[] a, int aOff, float[] x, int xOff, int n) {
        FloatVector s = FloatVector.zero(FS);
        int bound = n - n % VL, i = 0;
        for (; i < bound; i += VL) s = FloatVector.fromArray(FS, a, aOff + i).fma(FloatVector.fromArray(FS, x, xOff + i), s);
        float r = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(a[aOff + i], x[xOff + i], r);
        return r;
    }

    static float dotBf16(short[] b, int bOff, float[] x, int xOff, int n) {
        FloatVector s = FloatVector.zero(FS);
        int bound = n - n % VL, i = 0;
        for (; i < bound; i += VL) s = bf16(b, bOff + i).fma(FloatVector.fromArray(FS, x, xOff + i), s);
        float r = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(Numerics.bf16ToFloat(b[bOff + i]), x[xOff + i], r);
        return r;
    }

    /** As {@link #dotBf16} with x given as {@link Widening#splitPairs}(x) (pairs of lanes split into even / odd halves). */
    static float dotBf16Pairs(short[] b, int bOff, float[] xp, int xOff, int n) {
        FloatVector e = FloatVector.zero(FS), d = e;
        int bound = n - n % (2 * VL), i = 0;
        for (; i < bound; i += 2 * VL) {
            IntVector p = ShortVector.fromArray(SP, b, bOff + i).reinterpretAsInts();
            e = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(FS, xp, xOff + i), e);
            d = p.and(0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(FS, xp, xOff + i + VL), d);
        }
        float r = e.add(d).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(Numerics.bf16ToFloat(b[bOff + i]), xp[xOff + i], r);
        return r;
    }

    static float dotF16(short[] b, int bOff, float[] x, int xOff, int n) {
        FloatVector s = FloatVector.zero(FS);
        int bound = n - n % VL, i = 0;
        for (; i < bound; i += VL) s = f16(b, bOff + i).fma(FloatVector.fromArray(FS, x, xOff + i), s);
        float r = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(Float.float16ToFloat(b[bOff + i]), x[xOff + i], r);
        return r;
    }
}
