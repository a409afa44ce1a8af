package dev.bdserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorized y = x · wᵀ for weights in F32, BF16 or F16 and fp32 activations, with the semantics of
 * {@link ScalarKernels#matmul}: {@code y[t*rows + o] = Σ_i w[o,i] · x[t*cols + i]}.
 *
 * <p><b>T == 1 (GEMV)</b>: four weight rows at a time, vectorized along the input dimension: each
 * x vector is loaded once and used for four rows; 16-bit weights are widened in-register with no
 * cross-lane step by loading 2·VL of them as VL ints (even weight = low half, odd = high half) against
 * an even/odd-split copy of x (BF16: int &lt;&lt; 16 and int &amp; 0xFFFF0000); F16 rows are widened with
 * the S2I form (sign | (magnitude &lt;&lt; 13), times 2^112), whose pair form measured slower (C2
 * stopped inlining the larger kernel); one horizontal reduction per row at the end. The GEMM
 * widening uses the S2I form ({@link #bf16}, {@link #f16}). Memory-bound: it streams the weights once.
 *
 * <p><b>2 ≤ T ≤ 8</b>: a multi-token GEMV ({@link #gemvSmallT}): two rows widened once per VL inputs
 * and FMA'd against four tokens' x at a time (measured 2–3× the packed GEMM at T ≤ 4, ≈ 1.1× at 8).
 *
 * <p><b>T &gt; 8 (GEMM)</b>: x is first transposed into token-group panels ({@code xT[i][G]}: the
 * values of input feature i for G = 2·VL tokens), so the micro-kernel is vectorized along tokens and needs
 * no horizontal reduction. For each tile of {@value #R} weight rows and each block of {@value #KC}
 * input features the weights are widened once into an fp32 scratch (F32 weights are copied); then for every token group and every feature k, the weight w[o,k] is broadcast and
 * FMA'd into 2·R accumulator vectors (R rows × 2 token vectors), so each widened weight is reused
 * across all T tokens. A last group of at most VL tokens uses one token vector.
 *
 * <p>All sums are fp32 with FMA; the accumulation order differs from the scalar twin, so results
 * agree to ≈1e-6 relative to Σ|w·x|. F16 weights must be finite (inf/NaN bit patterns are not
 * decoded as such: weights never hold them); F16 subnormals are exact.
 */
public final class MatMul {
    private MatMul() {}

    /** Float species of the kernels ({@link VectorWidth}). Everything below is written in terms of VL. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Shorts with the same lane count (half the bits): BF16/F16 loads. */
    static final VectorSpecies<Short> SS = VectorWidth.SHORT_HALF;
    /** Ints with the same shape as FS: the widened 16-bit patterns. */
    static final VectorSpecies<Integer> IS = VectorWidth.INT;

    /** Weight rows per GEMM tile: R×2 accumulator vectors stay in registers (16 on AVX2). */
    static final int R = 6;
    /** Input features per GEMM block: the fp32 weight scratch is R×KC floats (6 KB, L1-resident). */
    static final int KC = 256;

    /**
     * Matrices at most this wide are widened a whole tile of R rows at a time: R·cols contiguous weights
     * read as one stream. Measured at T = 16, 2 threads, bf16 from DRAM: 768-wide shapes (Llama-160M)
     * run 20–35% faster than with R separate KC-wide pieces per block, while 2048- and 8192-wide shapes
     * run 10–15% slower (the widened rows no longer fit L1), so wider matrices keep KC pieces.
     */
    static final int WHOLE_ROWS = 1024;

    /**
     * Keeps the GEMM's read-ahead loads live. Read-ahead: while a tile computes, its micro-kernel also loads one
     * weight of the next tile per k (R apart, a scalar load XOR-ed into a value kept live here), so the next tile's
     * rows stream in while FMAs run instead of in a burst at its widening. Only whole-row tiles (cols ≤ {@link #WHOLE_ROWS}) read
     * ahead, through {@link #tile2Ahead} / {@link #tile1Ahead}; F32 weights are not read ahead. Measured at T = 16,
     * 2 threads, bf16 from DRAM, the two kernels interleaved in one JVM (fifth session): +1–4% on 768-wide shapes,
     * but 15–18% slower on 2048- and 8192-wide ones (KC pieces), where the plain kernels run.
     */
    static int sink;
    /** Tokens per group: two float vectors. */
    static final int G = 2 * VL;
    /** Token counts 2..SMALL_T use the multi-token GEMV kernel instead of the packed GEMM. 12: at 16 tokens the GEMM's
     *  one full token group ran 1.1–1.25x faster on 1B-shaped bf16 matrices (8192×2048: 79 vs 63 GFLOP/s, 2 threads,
     *  back to back) and equal on 768-wide ones; at 12 tokens a group is 3/4 full and the two were equal. */
    static final int SMALL_T = 12;
    /**
     * For T &gt; 1, matrices with fewer rows use {@link #gemvSmallRows}: LoRA shrinks (rank or rank/N rows) would
     * otherwise spend most of their time in the GEMM's scalar row tail and token packing, or in splitting x into
     * pairs for the 16-bit small-T kernel.
     */
    static final int GEMM_MIN_ROWS = 48;
    /** Rows per parallel chunk boundary (a multiple of R and of a 64-byte line of fp32 outputs). */
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
            par.forRange(w.rows(), GRAIN, (s, e) -> gemvSmallRows(w, x, T, y, s, e));
        } else if (T > 1 && T <= SMALL_T) {
            float[] xp = w.dtype() == DType.BF16 ? splitPairRows(x, T, w.cols()) : x;
            par.forRange(w.rows(), GRAIN, (s, e) -> gemvSmallT(w, xp, T, y, s, e));
        } else if (T == 1) {
            float[] xp = w.dtype() == DType.BF16 ? splitPairs(x, w.cols()) : x;
            par.forRange(w.rows(), GRAIN, (s, e) -> gemv(w, x, xp, y, s, e));
        } else {
            float[] xT = packTokens(x, T, w.cols());
            par.forRange(w.rows(), GRAIN, (s, e) -> gemm(w, xT, T, y, s, e));
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
        if (T == 1) gemv(w, x, w.dtype() == DType.BF16 ? splitPairs(x, w.cols()) : x, y, rowFrom, rowTo);
        else if (w.rows() < GEMM_MIN_ROWS) gemvSmallRows(w, x, T, y, rowFrom, rowTo);
        else if (T <= SMALL_T) gemvSmallT(w, w.dtype() == DType.BF16 ? splitPairRows(x, T, w.cols()) : x, T, y, rowFrom, rowTo);
        else gemm(w, packTokens(x, T, w.cols()), T, y, rowFrom, rowTo);
    }

    // ---------------------------------------------------------------- transposed accumulate (LoRA expand)

    /**
     * y[yOff + o] += Σ_j s[sOff + j] · wt[j, o] for o &lt; wt.cols(): a product with a matrix stored transposed
     * ([r, out]), computed as r scaled row additions. Used for LoRA expand, where r is small: every weight is
     * streamed once with no horizontal reductions (a row-by-row GEMV over [out, r] would reduce once per output).
     */
    public static void accumulateTransposed(Matrix wt, float[] s, int sOff, float[] y, int yOff) {
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
     * {@link #accumulateTransposed} for n tokens at once: y[yOffs[t] + o] += Σ_j s[sOffs[t] + j] · wt[j, o] for
     * t &lt; n. Tokens go in quads: for each pair of output vectors the four tokens' sums stay in 8 registers
     * over all r rows, so every widened weight vector feeds 4 FMAs and each y element is loaded and stored
     * once (the one-token kernel loads and stores y once per 4 rows and re-reads wt for every token). The
     * n mod 4 remaining tokens use {@link #accumulateTransposed}.
     */
    public static void accumulateTransposedTokens(Matrix wt, float[] s, int[] sOffs, float[] y, int[] yOffs, int n) {
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
        for (; t < n; t++) accumulateTransposed(wt, s, sOffs[t], y, yOffs[t]);
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

    // ---------------------------------------------------------------- conversions

    /** VL BF16 values at b[i .. i+VL) widened to fp32 (exact). */
    static FloatVector bf16(short[] b, int i) {
        return ((IntVector) ShortVector.fromArray(SS, b, i).convertShape(VectorOperators.S2I, IS, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** VL finite F16 values at b[i .. i+VL) widened to fp32 (exact, incl. subnormals). */
    static FloatVector f16(short[] b, int i) {
        IntVector v = (IntVector) ShortVector.fromArray(SS, b, i).convertShape(VectorOperators.S2I, IS, 0);
        IntVector bits = v.and(0x8000_0000).or(v.and(0x7FFF).lanewise(VectorOperators.LSHL, 13));
        return bits.reinterpretAsFloats().mul(0x1p112f);
    }

    // ---------------------------------------------------------------- GEMV (T == 1)

    /** Shorts filling one float vector's bits (2·VL lanes): 16-bit weights loaded as int pairs. */
    static final VectorSpecies<Short> SP = VectorWidth.SHORT;

    /**
     * x [cols] with each block of 2·VL features split into [VL even][VL odd] features (the tail
     * past the last full block unchanged), matching 16-bit weights loaded as int pairs: an int lane
     * holds weight 2j in its low and 2j+1 in its high half (little-endian).
     */
    static float[] splitPairs(float[] x, int cols) { return splitPairRows(x, 1, cols); }

    /** {@link #splitPairs} of each of the T rows of x [T, cols]. */
    static float[] splitPairRows(float[] x, int T, int cols) {
        float[] xp = new float[T * cols];                // [T, cols] permuted rows
        int bound = cols - cols % (2 * VL);
        for (int r = 0; r < T * cols; r += cols) {
            for (int b = r; b < r + bound; b += 2 * VL)
                for (int j = 0; j < VL; j++) {
                    xp[b + j] = x[b + 2 * j];
                    xp[b + VL + j] = x[b + 2 * j + 1];
                }
            System.arraycopy(x, r + bound, xp, r + bound, cols - bound);
        }
        return xp;
    }

    /**
     * GEMV rows [from, to): x [cols] as given, xp = {@link #splitPairs}(x) for 16-bit weights. The range is
     * cut into 4 equal quarters walked side by side (rows o, o+q, o+2q, o+3q together): each quarter is one
     * long contiguous stream, which the hardware prefetchers follow far better than 4 adjacent short rows
     * (measured here: 1.3–1.6x the bandwidth for rows of 2048 and 768 16-bit weights).
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

    /** As {@link #gemvBf16x4} for F16 weights, widened with the S2I form {@link #f16} (x not split). */
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

    /** As {@link #dotBf16} with x given as {@link #splitPairs}(x) (pairs of lanes split into even / odd halves). */
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

    // ---------------------------------------------------------------- multi-token GEMV (2 ≤ T ≤ 8)

    /**
     * Rows [from, to) for 2 ≤ T ≤ {@value #SMALL_T} tokens (any T ≥ 1 is correct; x is {@link #splitPairRows}(x)
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
     * Rows [from, to) of a matrix with few rows (under {@value #GEMM_MIN_ROWS}: LoRA shrinks) for any T: rows o and
     * o + 1 (one contiguous run of the matrix) are read in place, widened in registers, and FMA'd against four tokens'
     * x as given, four tokens at a time (the last row of an odd range pairs with itself and its copy is dropped).
     * BF16 rows widen with the S2I form ({@link #smallTBf16Rows}): the even / odd pair form would need x split first,
     * which for a matrix this small costs more than the product. Widening each pair into an fp32 scratch first (the
     * previous form) ran 1.2–2x slower hot on the shapes of a rank-24 BD-LoRA shrink of Llama-160M at TP 2
     * (36×768, 24×768, 12×1536, 12×384; T = 2, 4, 8), and 9% slower on the whole LoRA path at T = 4 with the factors
     * evicted between groups (48 groups per step, median of 8 alternating rounds in one JVM: 1.41 vs 1.29 ms).
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

    /** As {@link #smallTF32} on BF16 rows o and o + h, widened with {@link #bf16} against x as given (not split). */
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
     * ({@link #splitPairs}): each 2·VL weights load as VL ints, even weights int &lt;&lt; 16, odd ones
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

    // ---------------------------------------------------------------- GEMM (T > 1)

    /** Lanes of the token group starting at token t0: G for groups of more than VL tokens, else VL. */
    static int groupLanes(int T, int t0) {
        return Math.min(G, T - t0) <= VL ? VL : G;
    }

    /**
     * Transposes x [T, cols] into token-group panels: group g (tokens g·G ..) starts at g·G·cols and
     * holds xT[i·L + j] = x[(g·G + j)·cols + i] for its L lanes (zero-padded past T).
     *
     * @return panels [ceil(T/G) groups][cols][L]
     */
    static float[] packTokens(float[] x, int T, int cols) {
        int groups = (T + G - 1) / G;
        float[] xT = new float[groups * G * cols];
        for (int g = 0; g < groups; g++) {
            int t0 = g * G, nt = Math.min(G, T - t0), L = groupLanes(T, t0), base = g * G * cols;
            for (int j = 0; j < nt; j++) {
                int src = (t0 + j) * cols;
                for (int i = 0; i < cols; i++) xT[base + i * L + j] = x[src + i];
            }
        }
        return xT;
    }

    /** GEMM on rows [from, to) with x already packed by {@link #packTokens}. */
    static void gemm(Matrix w, float[] xT, int T, float[] y, int from, int to) {
        int cols = w.cols(), rows = w.rows();
        int groups = (T + G - 1) / G;
        int wc = cols <= WHOLE_ROWS ? cols : KC;         // widened columns per pass (see WHOLE_ROWS)
        float[] ws = new float[R * wc];                  // [R][wc] widened weight block
        float[] acc = new float[groups * R * G];         // [groups][R][L] partial sums
        boolean readAhead = w.dtype() != DType.F32 && wc == cols;  // see the read-ahead note at sink
        short[] ahead = readAhead ? w.bits() : null;
        int touched = 0;
        int o = from;
        for (; o + R <= to; o += R) {
            java.util.Arrays.fill(acc, 0f);
            int next = readAhead ? (o + 2 * R <= to ? o + R : o) * cols : 0; // the next tile's weights, read ahead
            for (int k1 = 0; k1 < cols; k1 += wc) {
                int kw = Math.min(wc, cols - k1);
                widen(w, o, k1, kw, ws, wc);
                for (int k0 = 0; k0 < kw; k0 += KC) {
                    int kc = Math.min(KC, kw - k0);
                    for (int g = 0; g < groups; g++) {
                        int L = groupLanes(T, g * G);
                        int xo = g * G * cols + (k1 + k0) * L, ao = g * R * G;
                        int from2 = next + (k1 + k0) * R;           // where this block's read-ahead starts
                        if (L == G) {
                            if (readAhead) touched ^= tile2Ahead(ws, k0, wc, xT, xo, kc, acc, ao, ahead, from2);
                            else tile2(ws, k0, wc, xT, xo, kc, acc, ao);
                        } else {
                            if (readAhead) touched ^= tile1Ahead(ws, k0, wc, xT, xo, kc, acc, ao, ahead, from2);
                            else tile1(ws, k0, wc, xT, xo, kc, acc, ao);
                        }
                    }
                }
            }
            for (int g = 0; g < groups; g++) {
                int t0 = g * G, nt = Math.min(G, T - t0), L = groupLanes(T, t0);
                for (int r = 0; r < R; r++)
                    for (int j = 0; j < nt; j++) y[(t0 + j) * rows + o + r] = acc[g * R * G + r * L + j];
            }
        }
        if (touched == 0x7ead_beef) sink = touched;      // keeps the loads; rarely written, so no line shared between threads
        for (; o < to; o++) gemmRowTail(w, xT, T, y, o);
    }

    /** One row o for all tokens (tail of a row range shorter than a tile). */
    private static void gemmRowTail(Matrix w, float[] xT, int T, float[] y, int o) {
        int cols = w.cols(), rows = w.rows();
        float[] row = new float[cols];                   // [cols] row o widened
        w.row(o, row, 0);
        for (int t = 0; t < T; t++) {
            int g = t / G, L = groupLanes(T, g * G), j = t - g * G, base = g * G * cols;
            float s = 0;
            for (int i = 0; i < cols; i++) s = Math.fma(row[i], xT[base + i * L + j], s);
            y[t * rows + o] = s;
        }
    }

    /**
     * Widens (F32: copies) w[o .. o+R, k0 .. k0+kc) into ws[r·wc + k]: the micro-kernel then
     * broadcasts from an L1-resident block instead of from R strided DRAM streams. When kc is the whole
     * row (wc = cols), the R rows are one contiguous run.
     */
    private static void widen(Matrix w, int o, int k0, int kc, float[] ws, int wc) {
        int cols = w.cols();
        if (kc == cols) {                                // whole rows: one contiguous run of R·cols weights
            widenRun(w, o * cols, ws, 0, R * cols);
            return;
        }
        for (int r = 0; r < R; r++) widenRun(w, (o + r) * cols + k0, ws, r * wc, kc);
    }

    /** ws[dst .. dst+n) = w's flat elements [base .. base+n) in fp32 (F32: copied; BF16/F16: widened with vectors). */
    private static void widenRun(Matrix w, int base, float[] ws, int dst, int n) {
        if (w.dtype() == DType.F32) {
            System.arraycopy(w.f32(), base, ws, dst, n);
            return;
        }
        short[] b = w.bits();
        int bound = n - n % VL;
        boolean bf = w.dtype() == DType.BF16;
        if (bf) widenBf16(b, base, ws, dst, bound);
        else widenF16(b, base, ws, dst, bound);
        for (int k = bound; k < n; k++) ws[dst + k] = bf ? Numerics.bf16ToFloat(b[base + k]) : Float.float16ToFloat(b[base + k]);
    }

    private static void widenBf16(short[] b, int base, float[] ws, int dst, int bound) {
        for (int k = 0; k < bound; k += VL) bf16(b, base + k).intoArray(ws, dst + k);
    }

    private static void widenF16(short[] b, int base, float[] ws, int dst, int bound) {
        for (int k = 0; k < bound; k += VL) f16(b, base + k).intoArray(ws, dst + k);
    }

    /**
     * Micro-kernel for a full group (two token vectors): for r &lt; R=6 and k &lt; kc,
     * acc[r·G .. +G) += w[wo + r·ws + k] · xT[xo + k·G .. +G). 12 accumulators in registers.
     */
    private static void tile2(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao) {
        FloatVector a0 = FloatVector.fromArray(FS, acc, ao), c0 = FloatVector.fromArray(FS, acc, ao + VL);
        FloatVector a1 = FloatVector.fromArray(FS, acc, ao + G), c1 = FloatVector.fromArray(FS, acc, ao + G + VL);
        FloatVector a2 = FloatVector.fromArray(FS, acc, ao + 2 * G), c2 = FloatVector.fromArray(FS, acc, ao + 2 * G + VL);
        FloatVector a3 = FloatVector.fromArray(FS, acc, ao + 3 * G), c3 = FloatVector.fromArray(FS, acc, ao + 3 * G + VL);
        FloatVector a4 = FloatVector.fromArray(FS, acc, ao + 4 * G), c4 = FloatVector.fromArray(FS, acc, ao + 4 * G + VL);
        FloatVector a5 = FloatVector.fromArray(FS, acc, ao + 5 * G), c5 = FloatVector.fromArray(FS, acc, ao + 5 * G + VL);
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws;
        for (int k = 0; k < kc; k++) {
            int xi = xo + k * G;
            FloatVector xv = FloatVector.fromArray(FS, xT, xi);
            FloatVector xu = FloatVector.fromArray(FS, xT, xi + VL);
            FloatVector b;
            b = FloatVector.broadcast(FS, w[w0 + k]); a0 = xv.fma(b, a0); c0 = xu.fma(b, c0);
            b = FloatVector.broadcast(FS, w[w1 + k]); a1 = xv.fma(b, a1); c1 = xu.fma(b, c1);
            b = FloatVector.broadcast(FS, w[w2 + k]); a2 = xv.fma(b, a2); c2 = xu.fma(b, c2);
            b = FloatVector.broadcast(FS, w[w3 + k]); a3 = xv.fma(b, a3); c3 = xu.fma(b, c3);
            b = FloatVector.broadcast(FS, w[w4 + k]); a4 = xv.fma(b, a4); c4 = xu.fma(b, c4);
            b = FloatVector.broadcast(FS, w[w5 + k]); a5 = xv.fma(b, a5); c5 = xu.fma(b, c5);
        }
        a0.intoArray(acc, ao); c0.intoArray(acc, ao + VL);
        a1.intoArray(acc, ao + G); c1.intoArray(acc, ao + G + VL);
        a2.intoArray(acc, ao + 2 * G); c2.intoArray(acc, ao + 2 * G + VL);
        a3.intoArray(acc, ao + 3 * G); c3.intoArray(acc, ao + 3 * G + VL);
        a4.intoArray(acc, ao + 4 * G); c4.intoArray(acc, ao + 4 * G + VL);
        a5.intoArray(acc, ao + 5 * G); c5.intoArray(acc, ao + 5 * G + VL);
    }

    /**
     * As {@link #tile2} for a group of ≤ VL tokens (one token vector, acc rows of VL). Even and odd k
     * go to separate accumulators (12 independent FMA chains, enough to cover FMA latency), which are
     * summed at the end.
     */
    private static void tile1(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao) {
        FloatVector a0 = FloatVector.fromArray(FS, acc, ao), a1 = FloatVector.fromArray(FS, acc, ao + VL);
        FloatVector a2 = FloatVector.fromArray(FS, acc, ao + 2 * VL), a3 = FloatVector.fromArray(FS, acc, ao + 3 * VL);
        FloatVector a4 = FloatVector.fromArray(FS, acc, ao + 4 * VL), a5 = FloatVector.fromArray(FS, acc, ao + 5 * VL);
        FloatVector c0 = FloatVector.zero(FS), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws;
        int k = 0;
        for (; k + 2 <= kc; k += 2) {
            FloatVector xv = FloatVector.fromArray(FS, xT, xo + k * VL);
            FloatVector xu = FloatVector.fromArray(FS, xT, xo + k * VL + VL);
            a0 = xv.fma(FloatVector.broadcast(FS, w[w0 + k]), a0); c0 = xu.fma(FloatVector.broadcast(FS, w[w0 + k + 1]), c0);
            a1 = xv.fma(FloatVector.broadcast(FS, w[w1 + k]), a1); c1 = xu.fma(FloatVector.broadcast(FS, w[w1 + k + 1]), c1);
            a2 = xv.fma(FloatVector.broadcast(FS, w[w2 + k]), a2); c2 = xu.fma(FloatVector.broadcast(FS, w[w2 + k + 1]), c2);
            a3 = xv.fma(FloatVector.broadcast(FS, w[w3 + k]), a3); c3 = xu.fma(FloatVector.broadcast(FS, w[w3 + k + 1]), c3);
            a4 = xv.fma(FloatVector.broadcast(FS, w[w4 + k]), a4); c4 = xu.fma(FloatVector.broadcast(FS, w[w4 + k + 1]), c4);
            a5 = xv.fma(FloatVector.broadcast(FS, w[w5 + k]), a5); c5 = xu.fma(FloatVector.broadcast(FS, w[w5 + k + 1]), c5);
        }
        if (k < kc) {
            FloatVector xv = FloatVector.fromArray(FS, xT, xo + k * VL);
            a0 = xv.fma(FloatVector.broadcast(FS, w[w0 + k]), a0);
            a1 = xv.fma(FloatVector.broadcast(FS, w[w1 + k]), a1);
            a2 = xv.fma(FloatVector.broadcast(FS, w[w2 + k]), a2);
            a3 = xv.fma(FloatVector.broadcast(FS, w[w3 + k]), a3);
            a4 = xv.fma(FloatVector.broadcast(FS, w[w4 + k]), a4);
            a5 = xv.fma(FloatVector.broadcast(FS, w[w5 + k]), a5);
        }
        a0.add(c0).intoArray(acc, ao); a1.add(c1).intoArray(acc, ao + VL); a2.add(c2).intoArray(acc, ao + 2 * VL);
        a3.add(c3).intoArray(acc, ao + 3 * VL); a4.add(c4).intoArray(acc, ao + 4 * VL); a5.add(c5).intoArray(acc, ao + 5 * VL);
    }

    /**
     * {@link #tile2} plus the read-ahead: one weight of the next tile loaded per k, R apart (R weights per k cover the
     * next tile's R whole rows; see {@link #sink}). The stride is the constant R so the index check leaves the loop.
     */
    private static int tile2Ahead(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao,
                                  short[] ahead, int aheadFrom) {
        FloatVector a0 = FloatVector.fromArray(FS, acc, ao), c0 = FloatVector.fromArray(FS, acc, ao + VL);
        FloatVector a1 = FloatVector.fromArray(FS, acc, ao + G), c1 = FloatVector.fromArray(FS, acc, ao + G + VL);
        FloatVector a2 = FloatVector.fromArray(FS, acc, ao + 2 * G), c2 = FloatVector.fromArray(FS, acc, ao + 2 * G + VL);
        FloatVector a3 = FloatVector.fromArray(FS, acc, ao + 3 * G), c3 = FloatVector.fromArray(FS, acc, ao + 3 * G + VL);
        FloatVector a4 = FloatVector.fromArray(FS, acc, ao + 4 * G), c4 = FloatVector.fromArray(FS, acc, ao + 4 * G + VL);
        FloatVector a5 = FloatVector.fromArray(FS, acc, ao + 5 * G), c5 = FloatVector.fromArray(FS, acc, ao + 5 * G + VL);
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws;
        int touch = 0;
        for (int k = 0; k < kc; k++) {
            int xi = xo + k * G;
            FloatVector xv = FloatVector.fromArray(FS, xT, xi);
            FloatVector xu = FloatVector.fromArray(FS, xT, xi + VL);
            FloatVector b;
            b = FloatVector.broadcast(FS, w[w0 + k]); a0 = xv.fma(b, a0); c0 = xu.fma(b, c0);
            b = FloatVector.broadcast(FS, w[w1 + k]); a1 = xv.fma(b, a1); c1 = xu.fma(b, c1);
            b = FloatVector.broadcast(FS, w[w2 + k]); a2 = xv.fma(b, a2); c2 = xu.fma(b, c2);
            b = FloatVector.broadcast(FS, w[w3 + k]); a3 = xv.fma(b, a3); c3 = xu.fma(b, c3);
            b = FloatVector.broadcast(FS, w[w4 + k]); a4 = xv.fma(b, a4); c4 = xu.fma(b, c4);
            b = FloatVector.broadcast(FS, w[w5 + k]); a5 = xv.fma(b, a5); c5 = xu.fma(b, c5);
            touch ^= ahead[aheadFrom + k * R];
        }
        a0.intoArray(acc, ao); c0.intoArray(acc, ao + VL);
        a1.intoArray(acc, ao + G); c1.intoArray(acc, ao + G + VL);
        a2.intoArray(acc, ao + 2 * G); c2.intoArray(acc, ao + 2 * G + VL);
        a3.intoArray(acc, ao + 3 * G); c3.intoArray(acc, ao + 3 * G + VL);
        a4.intoArray(acc, ao + 4 * G); c4.intoArray(acc, ao + 4 * G + VL);
        a5.intoArray(acc, ao + 5 * G); c5.intoArray(acc, ao + 5 * G + VL);
        return touch;
    }

    /** {@link #tile1} plus the read-ahead, as {@link #tile2Ahead}. */
    private static int tile1Ahead(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao,
                                  short[] ahead, int aheadFrom) {
        FloatVector a0 = FloatVector.fromArray(FS, acc, ao), a1 = FloatVector.fromArray(FS, acc, ao + VL);
        FloatVector a2 = FloatVector.fromArray(FS, acc, ao + 2 * VL), a3 = FloatVector.fromArray(FS, acc, ao + 3 * VL);
        FloatVector a4 = FloatVector.fromArray(FS, acc, ao + 4 * VL), a5 = FloatVector.fromArray(FS, acc, ao + 5 * VL);
        FloatVector c0 = FloatVector.zero(FS), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws;
        int touch = 0;
        int k = 0;
        for (; k + 2 <= kc; k += 2) {
            FloatVector xv = FloatVector.fromArray(FS, xT, xo + k * VL);
            FloatVector xu = FloatVector.fromArray(FS, xT, xo + k * VL + VL);
            a0 = xv.fma(FloatVector.broadcast(FS, w[w0 + k]), a0); c0 = xu.fma(FloatVector.broadcast(FS, w[w0 + k + 1]), c0);
            a1 = xv.fma(FloatVector.broadcast(FS, w[w1 + k]), a1); c1 = xu.fma(FloatVector.broadcast(FS, w[w1 + k + 1]), c1);
            a2 = xv.fma(FloatVector.broadcast(FS, w[w2 + k]), a2); c2 = xu.fma(FloatVector.broadcast(FS, w[w2 + k + 1]), c2);
            a3 = xv.fma(FloatVector.broadcast(FS, w[w3 + k]), a3); c3 = xu.fma(FloatVector.broadcast(FS, w[w3 + k + 1]), c3);
            a4 = xv.fma(FloatVector.broadcast(FS, w[w4 + k]), a4); c4 = xu.fma(FloatVector.broadcast(FS, w[w4 + k + 1]), c4);
            a5 = xv.fma(FloatVector.broadcast(FS, w[w5 + k]), a5); c5 = xu.fma(FloatVector.broadcast(FS, w[w5 + k + 1]), c5);
            touch ^= ahead[aheadFrom + k * R] ^ ahead[aheadFrom + (k + 1) * R];
        }
        if (k < kc) {
            FloatVector xv = FloatVector.fromArray(FS, xT, xo + k * VL);
            a0 = xv.fma(FloatVector.broadcast(FS, w[w0 + k]), a0);
            a1 = xv.fma(FloatVector.broadcast(FS, w[w1 + k]), a1);
            a2 = xv.fma(FloatVector.broadcast(FS, w[w2 + k]), a2);
            a3 = xv.fma(FloatVector.broadcast(FS, w[w3 + k]), a3);
            a4 = xv.fma(FloatVector.broadcast(FS, w[w4 + k]), a4);
            a5 = xv.fma(FloatVector.broadcast(FS, w[w5 + k]), a5);
            touch ^= ahead[aheadFrom + k * R];
        }
        a0.add(c0).intoArray(acc, ao); a1.add(c1).intoArray(acc, ao + VL); a2.add(c2).intoArray(acc, ao + 2 * VL);
        a3.add(c3).intoArray(acc, ao + 3 * VL); a4.add(c4).intoArray(acc, ao + 4 * VL); a5.add(c5).intoArray(acc, ao + 5 * VL);
        return touch;
    }
}
