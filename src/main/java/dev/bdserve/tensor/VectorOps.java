package dev.bdserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorized fp32 helpers for the forward pass. Each has a scalar twin in {@link ScalarKernels};
 * sums are accumulated in fp32 vector lanes (different order from the fp64 twins), exp uses the
 * Vector API's EXP (≤ 1 ulp class accuracy). Offsets address the arrays directly; n may be 0 unless
 * stated otherwise. Tails shorter than a vector are handled with scalar code.
 */
public final class VectorOps {
    private VectorOps() {}

    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();

    /** Σ a[aOff+i]·b[bOff+i] for i &lt; n (four fp32 vector accumulators). */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector s0 = FloatVector.zero(FS), s1 = s0, s2 = s0, s3 = s0;
        int i = 0;
        for (; i + 4 * VL <= n; i += 4 * VL) {
            s0 = FloatVector.fromArray(FS, a, aOff + i).fma(FloatVector.fromArray(FS, b, bOff + i), s0);
            s1 = FloatVector.fromArray(FS, a, aOff + i + VL).fma(FloatVector.fromArray(FS, b, bOff + i + VL), s1);
            s2 = FloatVector.fromArray(FS, a, aOff + i + 2 * VL).fma(FloatVector.fromArray(FS, b, bOff + i + 2 * VL), s2);
            s3 = FloatVector.fromArray(FS, a, aOff + i + 3 * VL).fma(FloatVector.fromArray(FS, b, bOff + i + 3 * VL), s3);
        }
        for (; i + VL <= n; i += VL) s0 = FloatVector.fromArray(FS, a, aOff + i).fma(FloatVector.fromArray(FS, b, bOff + i), s0);
        float r = s0.add(s1).add(s2.add(s3)).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(a[aOff + i], b[bOff + i], r);
        return r;
    }

    /** y[yOff+i] += a·x[xOff+i] for i &lt; n (fused multiply-add). */
    public static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        FloatVector av = FloatVector.broadcast(FS, a);
        int i = 0;
        for (; i + VL <= n; i += VL)
            FloatVector.fromArray(FS, x, xOff + i).fma(av, FloatVector.fromArray(FS, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] = Math.fma(a, x[xOff + i], y[yOff + i]);
    }

    /** y[yOff+i] += x[xOff+i] for i &lt; n. */
    public static void add(float[] y, int yOff, float[] x, int xOff, int n) {
        int i = 0;
        for (; i + VL <= n; i += VL)
            FloatVector.fromArray(FS, y, yOff + i).add(FloatVector.fromArray(FS, x, xOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += x[xOff + i];
    }

    /** x[off+i] *= s for i &lt; n. */
    public static void scale(float[] x, int off, float s, int n) {
        int i = 0;
        for (; i + VL <= n; i += VL) FloatVector.fromArray(FS, x, off + i).mul(s).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] *= s;
    }

    /** Σ x[off+i]² for i &lt; n in fp32 lanes. */
    static float sumSquares(float[] x, int off, int n) {
        FloatVector s0 = FloatVector.zero(FS), s1 = s0;
        int i = 0;
        for (; i + 2 * VL <= n; i += 2 * VL) {
            FloatVector a = FloatVector.fromArray(FS, x, off + i), b = FloatVector.fromArray(FS, x, off + i + VL);
            s0 = a.fma(a, s0);
            s1 = b.fma(b, s1);
        }
        for (; i + VL <= n; i += VL) {
            FloatVector a = FloatVector.fromArray(FS, x, off + i);
            s0 = a.fma(a, s0);
        }
        float r = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(x[off + i], x[off + i], r);
        return r;
    }

    /**
     * HF LlamaRMSNorm in fp32: out[outOff+i] = x[xOff+i] / sqrt(mean(x²) + eps) · weight[i], i &lt; n
     * (n ≥ 1). {@code out} may alias {@code x} at the same offset.
     */
    public static void rmsnorm(float[] out, int outOff, float[] x, int xOff, float[] weight, float eps, int n) {
        float inv = (float) (1.0 / Math.sqrt(sumSquares(x, xOff, n) / n + eps));
        int i = 0;
        for (; i + VL <= n; i += VL)
            FloatVector.fromArray(FS, x, xOff + i).mul(inv).mul(FloatVector.fromArray(FS, weight, i)).intoArray(out, outOff + i);
        for (; i < n; i++) out[outOff + i] = x[xOff + i] * inv * weight[i];
    }

    /** out[oOff+i] = silu(gate[gOff+i]) · up[uOff+i] = g / (1 + e^-g) · u for i &lt; n. */
    public static void siluMul(float[] gate, int gOff, float[] up, int uOff, float[] out, int oOff, int n) {
        int i = 0;
        for (; i + VL <= n; i += VL) {
            FloatVector g = FloatVector.fromArray(FS, gate, gOff + i);
            FloatVector s = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
            s.mul(FloatVector.fromArray(FS, up, uOff + i)).intoArray(out, oOff + i);
        }
        for (; i < n; i++) {
            float g = gate[gOff + i];
            out[oOff + i] = g / (1f + (float) Math.exp(-g)) * up[uOff + i];
        }
    }

    private static final float GELU_C = (float) Math.sqrt(2 / Math.PI), GELU_A = 0.044715f;

    /**
     * out = gelu_tanh(gate) · up over n elements, with gelu_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))) (HF
     * {@code gelu_pytorch_tanh}, Gemma's MLP).
     */
    public static void geluTanhMul(float[] gate, int gOff, float[] up, int uOff, float[] out, int oOff, int n) {
        int i = 0;
        for (; i + VL <= n; i += VL) {
            FloatVector g = FloatVector.fromArray(FS, gate, gOff + i);
            FloatVector inner = g.mul(g).mul(g).mul(GELU_A).add(g).mul(GELU_C);
            FloatVector act = inner.lanewise(VectorOperators.TANH).add(1f).mul(g).mul(0.5f);
            act.mul(FloatVector.fromArray(FS, up, uOff + i)).intoArray(out, oOff + i);
        }
        for (; i < n; i++) out[oOff + i] = geluTanh(gate[gOff + i]) * up[uOff + i];
    }

    /** The scalar gelu_tanh (the slow twin of {@link #geluTanhMul}'s lanes). */
    public static float geluTanh(float g) {
        return 0.5f * g * (1f + (float) Math.tanh(GELU_C * (g + GELU_A * g * g * g)));
    }

    /** x = cap · tanh(x / cap) over n elements (Gemma 2's attention and final logit soft-capping). */
    public static void softcap(float[] x, int off, float cap, int n) {
        float inv = 1f / cap;
        int i = 0;
        for (; i + VL <= n; i += VL)
            FloatVector.fromArray(FS, x, off + i).mul(inv).lanewise(VectorOperators.TANH).mul(cap).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] = cap * (float) Math.tanh(x[off + i] * inv);
    }

    /** Maximum of x[off .. off+n) (−∞ when n == 0; values assumed not NaN). */
    public static float max(float[] x, int off, int n) {
        FloatVector m = FloatVector.broadcast(FS, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i + VL <= n; i += VL) m = m.max(FloatVector.fromArray(FS, x, off + i));
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) r = Math.max(r, x[off + i]);
        return r;
    }

    /** Index (relative to off) of the first maximum of x[off .. off+n); n ≥ 1, values not NaN. */
    public static int argmax(float[] x, int off, int n) {
        if (n < 1) throw new IllegalArgumentException("argmax of an empty range");
        float m = max(x, off, n);
        int i = 0;
        for (; i + VL <= n; i += VL)
            if (FloatVector.fromArray(FS, x, off + i).eq(m).anyTrue()) break;
        for (; i < n; i++) if (x[off + i] == m) return i;
        return 0;   // unreachable for NaN-free input
    }

    /** Max-subtracted softmax of x[off .. off+n) in place (n ≥ 1). */
    public static void softmaxInPlace(float[] x, int off, int n) {
        float m = max(x, off, n);
        float s = expSubInPlace(x, off, n, m);
        scale(x, off, 1f / s, n);
    }

    /** x[i] = exp(x[i] − m) in place; returns Σ of the new values (fp32 lanes). */
    static float expSubInPlace(float[] x, int off, int n, float m) {
        FloatVector acc = FloatVector.zero(FS);
        int i = 0;
        for (; i + VL <= n; i += VL) {
            FloatVector e = FloatVector.fromArray(FS, x, off + i).sub(m).lanewise(VectorOperators.EXP);
            e.intoArray(x, off + i);
            acc = acc.add(e);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - m);
            x[off + i] = e;
            s += e;
        }
        return s;
    }
}
