package dev.bdserve.tensor;

/**
 * Vectorized y = x · wᵀ for weights in F32, BF16 or F16 and fp32 activations, with the semantics of
 * {@link ScalarKernels#matmul}: {@code y[t*rows + o] = Σ_i w[o,i] · x[t*cols + i]}; and the transposed accumulate of
 * LoRA expand. This class picks the kernel family by token count T and matrix shape:
 * <ul>
 *   <li>T == 1: the GEMV, {@link Gemv};</li>
 *   <li>2 ≤ T ≤ {@value #SMALL_T}, or matrices with fewer than {@value #GEMM_MIN_ROWS} rows: the multi-token GEMV,
 *       {@link SmallTGemv};</li>
 *   <li>T &gt; {@value #SMALL_T}: the packed GEMM, {@link Gemm};</li>
 *   <li>{@link #accumulateTransposed}: {@link AccumulateTransposed}.</li>
 * </ul>
 * 16-bit weights are widened to fp32 by {@link Widening}. Every kernel class runs at the width {@link VectorWidth}
 * chose.
 *
 * <p>All sums are fp32 with FMA; the accumulation order differs from the scalar twin, so results
 * agree to ≈1e-6 relative to Σ|w·x|. F16 weights must be finite (inf/NaN bit patterns are not
 * decoded as such: weights never hold them); F16 subnormals are exact.
 */
public final class MatMul {
    private MatMul() {}

    /**
     * Token counts 2..SMALL_T use the multi-token GEMV kernel instead of the packed GEMM: the crossover where the
     * GEMM's token group is full enough to win, found at 256-bit vectors (docs/bench/kernels.md).
     */
    static final int SMALL_T = 12;
    /**
     * For T &gt; 1, matrices with fewer rows use {@link SmallTGemv#gemvSmallRows}: LoRA shrinks (rank or rank/N rows) would
     * otherwise spend most of their time in the GEMM's scalar row tail and token packing, or in splitting x into
     * pairs for the 16-bit small-T kernel.
     */
    static final int GEMM_MIN_ROWS = 48;
    /** Rows per parallel chunk boundary (a multiple of {@link Gemm#R} and of a 64-byte line of fp32 outputs). */
    static final int GRAIN = 48;

    // ---------------------------------------------------------------- public entry points

    /**
     * y = x · wᵀ for T tokens, rows split over {@code par}.
     *
     * @param w   weight [rows, cols] (F32, BF16 or F16)
     * @param x   activations [T, cols] (row t at t*cols)
     * @param T   number of tokens (≥ 1)
     * @param y   output [T, rows] (row t at t*rows), overwritten
     * @param par thread pool the rows are split over in chunks aligned to {@value #GRAIN}
     */
    public static void matmul(Matrix w, float[] x, int T, float[] y, Parallel par) {
        ScalarKernels.checkMatmul(w, x, T, y);
        if (T > 1 && w.rows() < GEMM_MIN_ROWS) {
            par.forRange(w.rows(), GRAIN, (s, e) -> SmallTGemv.gemvSmallRows(w, x, T, y, s, e));
        } else if (T > 1 && T <= SMALL_T) {
            float[] xp = w.dtype() == DType.BF16 ? Widening.splitPairRows(x, T, w.cols()) : x;
            par.forRange(w.rows(), GRAIN, (s, e) -> SmallTGemv.gemvSmallT(w, xp, T, y, s, e));
        } else if (T == 1) {
            float[] xp = w.dtype() == DType.BF16 ? Widening.splitPairs(x, w.cols()) : x;
            par.forRange(w.rows(), GRAIN, (s, e) -> Gemv.gemv(w, x, xp, y, s, e));
        } else {
            float[] xT = Gemm.packTokens(x, T, w.cols());
            par.forRange(w.rows(), GRAIN, (s, e) -> Gemm.gemm(w, xT, T, y, s, e));
        }
    }

    /**
     * Single-threaded y[t*rows + o] = Σ_i w[o,i]·x[t*cols + i] for rows o in [rowFrom, rowTo) and all
     * t &lt; T; other entries of y are untouched. This is what {@link #matmul} runs on each chunk.
     */
    public static void matmulRows(Matrix w, float[] x, int T, float[] y, int rowFrom, int rowTo) {
        ScalarKernels.checkMatmul(w, x, T, y);
        if (rowFrom < 0 || rowTo > w.rows() || rowFrom > rowTo) throw new IllegalArgumentException("bad rows " + rowFrom + ".." + rowTo);
        if (rowFrom == rowTo) return;
        if (T == 1) Gemv.gemv(w, x, w.dtype() == DType.BF16 ? Widening.splitPairs(x, w.cols()) : x, y, rowFrom, rowTo);
        else if (w.rows() < GEMM_MIN_ROWS) SmallTGemv.gemvSmallRows(w, x, T, y, rowFrom, rowTo);
        else if (T <= SMALL_T) SmallTGemv.gemvSmallT(w, w.dtype() == DType.BF16 ? Widening.splitPairRows(x, T, w.cols()) : x, T, y, rowFrom, rowTo);
        else Gemm.gemm(w, Gemm.packTokens(x, T, w.cols()), T, y, rowFrom, rowTo);
    }

    // ---------------------------------------------------------------- transposed accumulate (LoRA expand)

    /**
     * y[yOff + o] += Σ_j s[sOff + j] · wt[j, o] for o &lt; wt.cols(): a product with a matrix stored transposed
     * ([r, out]), computed as r scaled row additions. Used for LoRA expand, where r is small: every weight is
     * streamed once with no horizontal reductions (a row-by-row GEMV over [out, r] would reduce once per output).
     */
    public static void accumulateTransposed(Matrix wt, float[] s, int sOff, float[] y, int yOff) {
        AccumulateTransposed.accumulate(wt, s, sOff, y, yOff);
    }

    /**
     * {@link #accumulateTransposed} for n tokens at once: y[yOffs[t] + o] += Σ_j s[sOffs[t] + j] · wt[j, o] for
     * t &lt; n. Tokens go in quads: for each pair of output vectors the four tokens' sums stay in 8 registers
     * over all r rows, so every widened weight vector feeds 4 FMAs and each y element is loaded and stored
     * once (the one-token kernel loads and stores y once per 4 rows and re-reads wt for every token). The
     * n mod 4 remaining tokens use {@link #accumulateTransposed}.
     */
    public static void accumulateTransposedTokens(Matrix wt, float[] s, int[] sOffs, float[] y, int[] yOffs, int n) {
        AccumulateTransposed.accumulateTokens(wt, s, sOffs, y, yOffs, n);
    }
}
