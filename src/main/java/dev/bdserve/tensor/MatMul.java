package dev.bdserve.tensor;

/** Interim scalar version (replaced by the vectorised kernels branch). */
public final class MatMul {
    private MatMul() {}
    public static void matmul(Matrix w, float[] x, int T, float[] y, Parallel par) {
        par.forRange(w.rows(), 4, (a, b) -> matmulRows(w, x, T, y, a, b));
    }
    public static void matmulRows(Matrix w, float[] x, int T, float[] y, int from, int to) {
        int cols = w.cols(), rows = w.rows();
        float[] row = new float[cols];
        for (int o = from; o < to; o++) {
            w.row(o, row, 0);
            for (int t = 0; t < T; t++) { float s = 0; for (int i = 0; i < cols; i++) s += row[i] * x[t * cols + i]; y[t * rows + o] = s; }
        }
    }
}
