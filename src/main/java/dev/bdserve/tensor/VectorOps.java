package dev.bdserve.tensor;

/** Interim scalar versions (replaced by the vectorised kernels branch). */
public final class VectorOps {
    private VectorOps() {}
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) { float s = 0; for (int i = 0; i < n; i++) s += a[aOff + i] * b[bOff + i]; return s; }
    public static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) { for (int i = 0; i < n; i++) y[yOff + i] += a * x[xOff + i]; }
    public static void add(float[] y, int yOff, float[] x, int xOff, int n) { for (int i = 0; i < n; i++) y[yOff + i] += x[xOff + i]; }
    public static void rmsnorm(float[] out, int outOff, float[] x, int xOff, float[] w, float eps, int n) {
        float ss = 0; for (int i = 0; i < n; i++) ss += x[xOff + i] * x[xOff + i];
        float r = (float) (1 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * r * w[i];
    }
    public static void siluMul(float[] g, int gOff, float[] u, int uOff, float[] out, int oOff, int n) {
        for (int i = 0; i < n; i++) { float v = g[gOff + i]; out[oOff + i] = v / (1 + (float) Math.exp(-v)) * u[uOff + i]; }
    }
    public static void softmaxInPlace(float[] x, int off, int n) {
        float m = Float.NEGATIVE_INFINITY; for (int i = 0; i < n; i++) m = Math.max(m, x[off + i]);
        float s = 0; for (int i = 0; i < n; i++) { x[off + i] = (float) Math.exp(x[off + i] - m); s += x[off + i]; }
        for (int i = 0; i < n; i++) x[off + i] /= s;
    }
}
