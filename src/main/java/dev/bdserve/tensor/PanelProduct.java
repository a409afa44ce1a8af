package dev.bdserve.tensor;

/**
 * Multi-token products of a weight whose rows are stored in a compact format (quantized blocks): rows are widened to
 * fp32 a panel at a time and multiplied with all T tokens by the dense kernels, so each stored weight is decoded
 * once per call whatever T is. With many tokens they are packed once for every panel's GEMM
 * ({@link Gemm#packTokens}); with few, {@link MatMul#matmulRows} runs on the panel.
 */
public final class PanelProduct {
    private PanelProduct() {}

    /** Rows widened at a time: whole GEMM tiles ({@link Gemm#R}), 96 × 2048 fp32 is 768 KB. */
    public static final int PANEL = 96;
    /** Rows per parallel chunk boundary: a multiple of the GEMM tile, so no chunk ends in a one-row tail. */
    public static final int GRAIN = 48;

    /** Writes row r of the weight, widened to fp32, into dst[off .. off + cols). */
    public interface RowWidener {
        void widen(int r, float[] dst, int off);
    }

    /**
     * y[t·rows + o] = Σ_i w[o, i]·x[t·cols + i] for all rows and T &gt; 1 tokens, rows split over {@code par}.
     *
     * @param rows  the weight's rows
     * @param cols  its columns
     * @param rowOf widens one stored row
     * @param x     [T, cols]
     * @param y     [T, rows], overwritten
     */
    public static void matmul(int rows, int cols, RowWidener rowOf, float[] x, int T, float[] y, Parallel par) {
        float[] xT = T > MatMul.SMALL_T ? Gemm.packTokens(x, T, cols) : null;     // packed once for every panel's GEMM
        par.forRange(rows, GRAIN, (s, e) -> panels(rows, cols, rowOf, x, xT, T, y, s, e));
    }

    /** Rows [from, to) in panels of {@value #PANEL}: widened, multiplied, scattered into y. */
    private static void panels(int rows, int cols, RowWidener rowOf, float[] x, float[] xT, int T, float[] y, int from, int to) {
        int n = Math.min(PANEL, to - from);
        float[] panel = new float[n * cols], out = new float[T * n];     // [n, cols] widened rows, [T, n] their products
        for (int p0 = from; p0 < to; p0 += PANEL) {
            int m = Math.min(PANEL, to - p0);
            for (int i = 0; i < m; i++) rowOf.widen(p0 + i, panel, i * cols);
            Matrix pw = Matrix.ofF32(m, cols, m == n ? panel : java.util.Arrays.copyOf(panel, m * cols));
            if (xT != null && m >= MatMul.GEMM_MIN_ROWS) Gemm.gemm(pw, xT, T, out, 0, m);
            else MatMul.matmulRows(pw, x, T, out, 0, m);
            for (int t = 0; t < T; t++) System.arraycopy(out, t * m, y, t * rows + p0, m);
        }
    }
}
