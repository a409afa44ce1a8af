package dev.bdserve.tensor;

import static dev.bdserve.tensor.Widening.bf16;
import static dev.bdserve.tensor.Widening.f16;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * y += sᵀ · wt for a matrix wt [r, out] stored transposed: the LoRA expand (r small), computed as r scaled row
 * additions, so every weight is streamed once with no horizontal reductions. {@link MatMul#accumulateTransposed} and
 * {@link MatMul#accumulateTransposedTokens} are the entry points; the scalar twin is
 * {@link ScalarKernels#accumulateTransposed}.
 */
final class AccumulateTransposed {
    private AccumulateTransposed() {}

    /** Float species of the kernels ({@link VectorWidth}): a static final constant, so C2 compiles the vector code. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();

    /**
     * y[yOff + o] += Σ_j s[sOff + j] · wt[j, o] for o &lt; wt.cols(): a product with a matrix stored transposed
     * ([r, out]), computed as r scaled row additions. Used for LoRA expand, where r is small: every weight is
     * streamed once with no horizontal reductions (a row-by-row GEMV over [out, r] would reduce once per output).
     */
    static void accumulate(Matrix wt, float[] s, int sOff, float[] y, int yOff) {
        int r = wt.rows(), n = wt.cols();
        if (sOff < 0 || sOff + r > s.length) throw new IllegalArgumentException("s too short for " + r + " coefficients at " + sOff);
        if (yOff < 0 || yOff + n > y.length) throw new IllegalArgumentException("y too short for " + n + " outputs at " + yOff);
        // 4 rows per pass (y loaded and stored once per 4 rows): rows j, j+q, j+2q, j+3q, so that each of the
        // 4 streams runs through a quarter of the matrix contiguously (as in the GEMV)
        int q = r / 4;
        for (int j = 0; j < q; j++) {
            float a0 = s[sOff + j], a1 = s[sOff + j + q], a2 = s[sOff + j + 2 * q], a3 = s[sOff + j + 3 * q];
            if (a0 == 0f && a1 == 0f && a2 == 0f && a3 == 0f) continue;
            switch (wt.dtype()) {
                case F32 -> axpy4F32(a0, a1, a2, a3, wt.f32(), j * n, q * n, n, y, yOff);
                case BF16 -> axpy4Bf16(a0, a1, a2, a3, wt.bits(), j * n, q * n, n, y, yOff);
                case F16 -> axpy4F16(a0, a1, a2, a3, wt.bits(), j * n, q * n, n, y, yOff);
            }
        }
        for (int j = 4 * q; j < r; j++) {
            float a = s[sOff + j];
            if (a == 0f) continue;
            switch (wt.dtype()) {
                case F32 -> axpyF32(a, wt.f32(), j * n, y, yOff, n);
                case BF16 -> axpyBf16(a, wt.bits(), j * n, y, yOff, n);
                case F16 -> axpyF16(a, wt.bits(), j * n, y, yOff, n);
            }
        }
    }

    /**
     * {@link #accumulate} for n tokens at once: y[yOffs[t] + o] += Σ_j s[sOffs[t] + j] · wt[j, o] for
     * t &lt; n. Tokens go in quads: for each pair of output vectors the four tokens' sums stay in 8 registers
     * over all r rows, so every widened weight vector feeds 4 FMAs and each y element is loaded and stored
     * once (the one-token kernel loads and stores y once per 4 rows and re-reads wt for every token). The
     * n mod 4 remaining tokens use {@link #accumulate}.
     */
    static void accumulateTokens(Matrix wt, float[] s, int[] sOffs, float[] y, int[] yOffs, int n) {
        int r = wt.rows(), out = wt.cols();
        for (int t = 0; t < n; t++) {
            if (sOffs[t] < 0 || sOffs[t] + r > s.length) throw new IllegalArgumentException("s too short for " + r + " coefficients at " + sOffs[t]);
            if (yOffs[t] < 0 || yOffs[t] + out > y.length) throw new IllegalArgumentException("y too short for " + out + " outputs at " + yOffs[t]);
        }
        int t = 0;
        for (; t + 4 <= n; t += 4) {
            int s0 = sOffs[t], s1 = sOffs[t + 1], s2 = sOffs[t + 2], s3 = sOffs[t + 3];
            int y0 = yOffs[t], y1 = yOffs[t + 1], y2 = yOffs[t + 2], y3 = yOffs[t + 3];
            int o = 0;
            for (; o + 2 * VL <= out; o += 2 * VL) {
                FloatVector a0 = FloatVector.fromArray(FS, y, y0 + o), b0 = FloatVector.fromArray(FS, y, y0 + o + VL);
                FloatVector a1 = FloatVector.fromArray(FS, y, y1 + o), b1 = FloatVector.fromArray(FS, y, y1 + o + VL);
                FloatVector a2 = FloatVector.fromArray(FS, y, y2 + o), b2 = FloatVector.fromArray(FS, y, y2 + o + VL);
                FloatVector a3 = FloatVector.fromArray(FS, y, y3 + o), b3 = FloatVector.fromArray(FS, y, y3 + o + VL);
                for (int j = 0, w = o; j < r; j++, w += out) {
                    FloatVector u = rowVector(wt, w), v = rowVector(wt, w + VL), c;
                    c = FloatVector.broadcast(FS, s[s0 + j]); a0 = u.fma(c, a0); b0 = v.fma(c, b0);
                    c = FloatVector.broadcast(FS, s[s1 + j]); a1 = u.fma(c, a1); b1 = v.fma(c, b1);
                    c = FloatVector.broadcast(FS, s[s2 + j]); a2 = u.fma(c, a2); b2 = v.fma(c, b2);
                    c = FloatVector.broadcast(FS, s[s3 + j]); a3 = u.fma(c, a3); b3 = v.fma(c, b3);
                }
                a0.intoArray(y, y0 + o); b0.intoArray(y, y0 + o + VL);
                a1.intoArray(y, y1 + o); b1.intoArray(y, y1 + o + VL);
                a2.intoArray(y, y2 + o); b2.intoArray(y, y2 + o + VL);
                a3.intoArray(y, y3 + o); b3.intoArray(y, y3 + o + VL);
            }
            for (; o < out; o++) {                                           // columns past the last vector pair
                float c0 = y[y0 + o], c1 = y[y1 + o], c2 = y[y2 + o], c3 = y[y3 + o];
                for (int j = 0; j < r; j++) {
                    float w = wt.get(j, o);
                    c0 = Math.fma(s[s0 + j], w, c0); c1 = Math.fma(s[s1 + j], w, c1);
                    c2 = Math.fma(s[s2 + j], w, c2); c3 = Math.fma(s[s3 + j], w, c3);
                }
                y[y0 + o] = c0; y[y1 + o] = c1; y[y2 + o] = c2; y[y3 + o] = c3;
            }
        }
        for (; t < n; t++) accumulate(wt, s, sOffs[t], y, yOffs[t]);
    }

    /** VL weights of wt from flat index i, widened to fp32. */
    private static FloatVector rowVector(Matrix wt, int i) {
        return switch (wt.dtype()) {
            case F32 -> FloatVector.fromArray(FS, wt.f32(), i);
            case BF16 -> bf16(wt.bits(), i);
            case F16 -> f16(wt.bits(), i);
        };
    }

    /** y[yOff + i] += a0·w[o + i] + a1·w[o + st + i] + a2·w[o + 2st + i] + a3·w[o + 3st + i] for i &lt; n (fused in that order). */
    private static void axpy4F32(float a0, float a1, float a2, float a3, float[] w, int o, int st, int n, float[] y, int yOff) {
        FloatVector v0 = FloatVector.broadcast(FS, a0), v1 = FloatVector.broadcast(FS, a1);
        FloatVector v2 = FloatVector.broadcast(FS, a2), v3 = FloatVector.broadcast(FS, a3);
        int i = 0;
        for (; i <= n - VL; i += VL) {
            FloatVector acc = FloatVector.fromArray(FS, w, o + i).fma(v0, FloatVector.fromArray(FS, y, yOff + i));
            acc = FloatVector.fromArray(FS, w, o + st + i).fma(v1, acc);
            acc = FloatVector.fromArray(FS, w, o + 2 * st + i).fma(v2, acc);
            FloatVector.fromArray(FS, w, o + 3 * st + i).fma(v3, acc).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            float acc = Math.fma(w[o + i], a0, y[yOff + i]);
            acc = Math.fma(w[o + st + i], a1, acc);
            acc = Math.fma(w[o + 2 * st + i], a2, acc);
            y[yOff + i] = Math.fma(w[o + 3 * st + i], a3, acc);
        }
    }

    /** As {@link #axpy4F32} on BF16 rows. */
    private static void axpy4Bf16(float a0, float a1, float a2, float a3, short[] w, int o, int st, int n, float[] y, int yOff) {
        FloatVector v0 = FloatVector.broadcast(FS, a0), v1 = FloatVector.broadcast(FS, a1);
        FloatVector v2 = FloatVector.broadcast(FS, a2), v3 = FloatVector.broadcast(FS, a3);
        int i = 0;
        for (; i <= n - VL; i += VL) {
            FloatVector acc = bf16(w, o + i).fma(v0, FloatVector.fromArray(FS, y, yOff + i));
            acc = bf16(w, o + st + i).fma(v1, acc);
            acc = bf16(w, o + 2 * st + i).fma(v2, acc);
            bf16(w, o + 3 * st + i).fma(v3, acc).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            float acc = Math.fma(Numerics.bf16ToFloat(w[o + i]), a0, y[yOff + i]);
            acc = Math.fma(Numerics.bf16ToFloat(w[o + st + i]), a1, acc);
            acc = Math.fma(Numerics.bf16ToFloat(w[o + 2 * st + i]), a2, acc);
            y[yOff + i] = Math.fma(Numerics.bf16ToFloat(w[o + 3 * st + i]), a3, acc);
        }
    }

    /** As {@link #axpy4F32} on F16 rows. */
    private static void axpy4F16(float a0, float a1, float a2, float a3, short[] w, int o, int st, int n, float[] y, int yOff) {
        FloatVector v0 = FloatVector.broadcast(FS, a0), v1 = FloatVector.broadcast(FS, a1);
        FloatVector v2 = FloatVector.broadcast(FS, a2), v3 = FloatVector.broadcast(FS, a3);
        int i = 0;
        for (; i <= n - VL; i += VL) {
            FloatVector acc = f16(w, o + i).fma(v0, FloatVector.fromArray(FS, y, yOff + i));
            acc = f16(w, o + st + i).fma(v1, acc);
            acc = f16(w, o + 2 * st + i).fma(v2, acc);
            f16(w, o + 3 * st + i).fma(v3, acc).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            float acc = Math.fma(Float.float16ToFloat(w[o + i]), a0, y[yOff + i]);
            acc = Math.fma(Float.float16ToFloat(w[o + st + i]), a1, acc);
            acc = Math.fma(Float.float16ToFloat(w[o + 2 * st + i]), a2, acc);
            y[yOff + i] = Math.fma(Float.float16ToFloat(w[o + 3 * st + i]), a3, acc);
        }
    }

    private static void axpyF32(float a, float[] w, int wOff, float[] y, int yOff, int n) {
        FloatVector av = FloatVector.broadcast(FS, a);
        int i = 0;
        for (; i <= n - VL; i += VL)
            FloatVector.fromArray(FS, w, wOff + i).fma(av, FloatVector.fromArray(FS, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += a * w[wOff + i];
    }

    private static void axpyBf16(float a, short[] w, int wOff, float[] y, int yOff, int n) {
        FloatVector av = FloatVector.broadcast(FS, a);
        int i = 0;
        for (; i <= n - VL; i += VL)
            bf16(w, wOff + i).fma(av, FloatVector.fromArray(FS, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += a * Numerics.bf16ToFloat(w[wOff + i]);
    }

    private static void axpyF16(float a, short[] w, int wOff, float[] y, int yOff, int n) {
        FloatVector av = FloatVector.broadcast(FS, a);
        int i = 0;
        for (; i <= n - VL; i += VL)
            f16(w, wOff + i).fma(av, FloatVector.fromArray(FS, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += a * Float.float16ToFloat(w[wOff + i]);
    }
}
