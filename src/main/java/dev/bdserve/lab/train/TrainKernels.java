package dev.bdserve.lab.train;

import dev.bdserve.tensor.VectorWidth;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fp32 vector kernels of training (Vector API): a dot product and an axpy over contiguous ranges.
 * Every matrix product of the forward and backward pass is written in terms of these two. Results do not
 * depend on the JIT tier (so a resumed run continues bit for bit).
 */
final class TrainKernels {
    static final VectorSpecies<Float> S = VectorWidth.FLOAT;

    private TrainKernels() {}

    /** Σ_i a[aOff+i]·b[bOff+i], i < n. */
    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0, up = S.loopBound(n);
        FloatVector acc = FloatVector.zero(S);
        for (; i < up; i += S.length())
            acc = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc);
        float s = 0;
        for (int l = 0; l < S.length(); l++) s += acc.lane(l);   // fixed order: the same sum compiled or interpreted (reduceLanes is not)
        for (; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }

    /** y[yOff+i] += alpha·x[xOff+i], i < n. */
    static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0, up = S.loopBound(n);
        FloatVector a = FloatVector.broadcast(S, alpha);
        for (; i < up; i += S.length())
            FloatVector.fromArray(S, x, xOff + i).fma(a, FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
    }

    /** Wᵀ: [out, in] → [in, out]. */
    static float[] transpose(float[] w, int out, int in) {
        float[] t = new float[w.length];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) t[i * out + o] = w[o * in + i];
        return t;
    }

    /**
     * y[T, out] = x[T, in] · W[out, in]ᵀ computed from wT = Wᵀ [in, out] as y[t, :] = Σ_i x[t, i]·wT[i, :]: axpys
     * over whole output rows, which vectorise without horizontal reductions.
     */
    static void linearT(float[] wT, int out, int in, float[] x, int T, float[] y) {
        java.util.Arrays.fill(y, 0, T * out, 0f);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < in; i++) {
                float xv = x[t * in + i];
                if (xv != 0) axpy(xv, wT, i * out, y, t * out, out);
            }
    }

    /** dx[T, in] += dy[T, out] · W[out, in] (the input gradient of a linear layer). */
    static void linearBackward(float[] w, int out, int in, float[] dy, int T, float[] dx) {
        for (int t = 0; t < T; t++)
            for (int o = 0; o < out; o++) {
                float g = dy[t * out + o];
                if (g != 0) axpy(g, w, o * in, dx, t * in, in);
            }
    }
}
