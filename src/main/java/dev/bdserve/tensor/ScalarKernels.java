package dev.bdserve.tensor;

/**
 * Plain scalar reference kernels: the twins the vectorized kernels are tested against, and a
 * fallback. Sums (matmul, dot, the mean of squares in rmsnorm, the softmax denominator) are
 * accumulated in fp64 and rounded to fp32 once at the end, so they are at least as accurate as any
 * fp32 accumulation order; element-wise results are computed in fp32 like the fast kernels.
 */
public final class ScalarKernels {
    private ScalarKernels() {}

    /**
     * y = x · wᵀ for T tokens: {@code y[t*rows + o] = Σ_i w[o,i] · x[t*cols + i]}.
     *
     * @param w weight [rows, cols]
     * @param x activations [T, cols]
     * @param T number of tokens (≥ 1)
     * @param y output [T, rows], overwritten
     */
    public static void matmul(Matrix w, float[] x, int T, float[] y) {
        int rows = w.rows(), cols = w.cols();
        checkMatmul(w, x, T, y);
        float[] row = new float[cols];                     // [cols] row o widened to fp32
        for (int o = 0; o < rows; o++) {
            w.row(o, row, 0);
            for (int t = 0; t < T; t++) {
                double s = 0;
                int xo = t * cols;
                for (int i = 0; i < cols; i++) s += (double) row[i] * x[xo + i];
                y[t * rows + o] = (float) s;
            }
        }
    }

    static void checkMatmul(Matrix w, float[] x, int T, float[] y) {
        if (T < 1) throw new IllegalArgumentException("T must be >= 1: " + T);
        if ((long) T * w.cols() > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + w.cols());
        if ((long) T * w.rows() > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + w.rows());
    }

    /** Σ a[aOff+i]·b[bOff+i] for i < n, accumulated in fp64. */
    /** y[yOff + o] += Σ_j s[sOff + j] · wt[j, o], accumulated in fp64 and added once. */
    public static void accumulateTransposed(Matrix wt, float[] s, int sOff, float[] y, int yOff) {
        for (int o = 0; o < wt.cols(); o++) {
            double acc = 0;
            for (int j = 0; j < wt.rows(); j++) acc += (double) s[sOff + j] * wt.get(j, o);
            y[yOff + o] += (float) acc;
        }
    }

    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double) a[aOff + i] * b[bOff + i];
        return (float) s;
    }

    /** y[yOff+i] += a·x[xOff+i] for i < n. */
    public static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) y[yOff + i] = Math.fma(a, x[xOff + i], y[yOff + i]);
    }

    /** y[yOff+i] += x[xOff+i] for i < n. */
    public static void add(float[] y, int yOff, float[] x, int xOff, int n) {
        for (int i = 0; i < n; i++) y[yOff + i] += x[xOff + i];
    }

    /** x[off+i] *= s for i < n. */
    public static void scale(float[] x, int off, float s, int n) {
        for (int i = 0; i < n; i++) x[off + i] *= s;
    }

    /**
     * HF LlamaRMSNorm: out = x / sqrt(mean(x²) + eps) * weight over n elements (mean of squares in
     * fp64, the rest in fp32). {@code out} may alias {@code x}.
     */
    public static void rmsnorm(float[] out, int outOff, float[] x, int xOff, float[] weight, float eps, int n) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double) x[xOff + i] * x[xOff + i];
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * inv * weight[i];
    }

    /** Convenience overload on whole arrays: out[0..n) = rmsnorm(x[0..n)) · weight. */
    public static void rmsnorm(float[] out, float[] x, float[] weight, float eps, int n) {
        rmsnorm(out, 0, x, 0, weight, eps, n);
    }

    /** scores[sOff+i] = scale · Σ_d q[qOff+d] · kt[ktOff + d·stride + i] for i &lt; n (keys stored transposed; fp64 sums). */
    public static void scoresTransposed(float[] q, int qOff, float[] kt, int ktOff, int stride, int n, int D,
                                        float scale, float[] scores, int sOff) {
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += (double) q[qOff + d] * kt[ktOff + d * stride + i];
            scores[sOff + i] = (float) (s * scale);
        }
    }

    /** out[oOff+d] += Σ_{j&lt;n} p[pOff+j] · v[vOff + j·stride + d] for d &lt; D (fp64 sums). */
    public static void weightedSum(float[] p, int pOff, int n, float[] v, int vOff, int stride, int D, float[] out, int oOff) {
        for (int d = 0; d < D; d++) {
            double s = out[oOff + d];
            for (int j = 0; j < n; j++) s += (double) p[pOff + j] * v[vOff + j * stride + d];
            out[oOff + d] = (float) s;
        }
    }

    /** Max-subtracted softmax of x[off .. off+n) in place (denominator in fp64). */
    public static void softmaxInPlace(float[] x, int off, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) m = Math.max(m, x[off + i]);
        double s = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - m);
            x[off + i] = e;
            s += e;
        }
        float inv = (float) (1.0 / s);
        for (int i = 0; i < n; i++) x[off + i] *= inv;
    }

    /** silu(v) = v · sigmoid(v) = v / (1 + e^-v). */
    public static float silu(float v) { return (float) (v / (1.0 + Math.exp(-v))); }

    /** x[off+i] = silu(x[off+i]) in place for i < n. */
    public static void silu(float[] x, int off, int n) {
        for (int i = 0; i < n; i++) x[off + i] = silu(x[off + i]);
    }

    /** out[oOff+i] = silu(gate[gOff+i]) · up[uOff+i] for i < n. */
    public static void siluMul(float[] gate, int gOff, float[] up, int uOff, float[] out, int oOff, int n) {
        for (int i = 0; i < n; i++) out[oOff + i] = silu(gate[gOff + i]) * up[uOff + i];
    }

    /** Index (relative to off) of the first maximum of x[off .. off+n); n ≥ 1, values not NaN. */
    public static int argmax(float[] x, int off, int n) {
        int best = 0;
        float bv = x[off];
        for (int i = 1; i < n; i++) {
            if (x[off + i] > bv) { bv = x[off + i]; best = i; }
        }
        return best;
    }

    /** Maximum of x[off .. off+n) (−∞ when n == 0). */
    public static float max(float[] x, int off, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) m = Math.max(m, x[off + i]);
        return m;
    }
}
