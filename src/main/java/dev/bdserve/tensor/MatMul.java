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
 * 16-element x vector is loaded once and used for four rows; 16-bit weights are widened in-register
 * (BF16: sign-extend S2I, shift left 16; F16: sign | (magnitude &lt;&lt; 13), times 2^112); one
 * horizontal reduction per row at the end. Memory-bound: it streams the weights once.
 *
 * <p><b>T &gt; 1 (GEMM)</b>: x is first transposed into token-group panels ({@code xT[i][16]}: the
 * values of input feature i for 16 tokens), so the micro-kernel is vectorized along tokens and needs
 * no horizontal reduction. For each tile of {@value #R} weight rows and each block of {@value #KC}
 * input features the 16-bit weights are widened once into an fp32 scratch (F32 weights are read in
 * place); then for every token group and every feature k, the weight w[o,k] is broadcast and
 * FMA'd into R accumulator vectors (R×2 when two 16-token groups go together), so each widened weight
 * is reused across all T tokens. Groups of fewer than 16 tokens use 4- or 8-lane vectors.
 *
 * <p>All sums are fp32 with FMA; the accumulation order differs from the scalar twin, so results
 * agree to ≈1e-6 relative to Σ|w·x|. F16 weights must be finite (inf/NaN bit patterns are not
 * decoded as such: weights never hold them); F16 subnormals are exact.
 */
public final class MatMul {
    private MatMul() {}

    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    static final VectorSpecies<Float> F128 = FloatVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    /** Weight rows per GEMM tile (register accumulators per token vector). */
    static final int R = 8;
    /** Input features per GEMM block: the fp32 weight scratch is R×KC floats (8 KB, L1-resident). */
    static final int KC = 256;
    /** Tokens per group = lanes of the widest float vector. */
    static final int G = 16;
    /** Rows per parallel chunk boundary (a multiple of R and of a 64-byte line of fp32 outputs). */
    static final int GRAIN = 16;

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
        if (T == 1) {
            par.forRange(w.rows(), GRAIN, (s, e) -> gemv(w, x, y, s, e));
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
        if (T == 1) gemv(w, x, y, rowFrom, rowTo);
        else gemm(w, packTokens(x, T, w.cols()), T, y, rowFrom, rowTo);
    }

    // ---------------------------------------------------------------- conversions

    /** 16 BF16 values at b[i..i+16) widened to fp32. */
    static FloatVector bf16x16(short[] b, int i) {
        return ((IntVector) ShortVector.fromArray(S256, b, i).convertShape(VectorOperators.S2I, I512, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** 16 finite F16 values at b[i..i+16) widened to fp32 (exact, incl. subnormals). */
    static FloatVector f16x16(short[] b, int i) {
        IntVector v = (IntVector) ShortVector.fromArray(S256, b, i).convertShape(VectorOperators.S2I, I512, 0);
        IntVector bits = v.and(0x8000_0000).or(v.and(0x7FFF).lanewise(VectorOperators.LSHL, 13));
        return bits.reinterpretAsFloats().mul(0x1p112f);
    }

    // ---------------------------------------------------------------- GEMV (T == 1)

    static void gemv(Matrix w, float[] x, float[] y, int from, int to) {
        int o = from;
        switch (w.dtype()) {
            case F32 -> {
                float[] a = w.f32();
                for (; o + 4 <= to; o += 4) gemvF32x4(a, w.cols(), x, y, o);
                for (; o < to; o++) y[o] = dotF32(a, o * w.cols(), x, 0, w.cols());
            }
            case BF16 -> {
                short[] b = w.bits();
                for (; o + 4 <= to; o += 4) gemvBf16x4(b, w.cols(), x, y, o);
                for (; o < to; o++) y[o] = dotBf16(b, o * w.cols(), x, 0, w.cols());
            }
            case F16 -> {
                short[] b = w.bits();
                for (; o + 4 <= to; o += 4) gemvF16x4(b, w.cols(), x, y, o);
                for (; o < to; o++) y[o] = dotF16(b, o * w.cols(), x, 0, w.cols());
            }
        }
    }

    /** y[o..o+4) = rows o..o+3 of a [*, cols] · x[0..cols). */
    private static void gemvF32x4(float[] a, int cols, float[] x, float[] y, int o) {
        int b0 = o * cols, b1 = b0 + cols, b2 = b1 + cols, b3 = b2 + cols;
        FloatVector s0 = FloatVector.zero(F512), s1 = s0, s2 = s0, s3 = s0;
        int bound = cols & -16, i = 0;
        for (; i < bound; i += 16) {
            FloatVector xv = FloatVector.fromArray(F512, x, i);
            s0 = FloatVector.fromArray(F512, a, b0 + i).fma(xv, s0);
            s1 = FloatVector.fromArray(F512, a, b1 + i).fma(xv, s1);
            s2 = FloatVector.fromArray(F512, a, b2 + i).fma(xv, s2);
            s3 = FloatVector.fromArray(F512, a, b3 + i).fma(xv, s3);
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
        y[o] = r0; y[o + 1] = r1; y[o + 2] = r2; y[o + 3] = r3;
    }

    private static void gemvBf16x4(short[] b, int cols, float[] x, float[] y, int o) {
        int b0 = o * cols, b1 = b0 + cols, b2 = b1 + cols, b3 = b2 + cols;
        FloatVector s0 = FloatVector.zero(F512), s1 = s0, s2 = s0, s3 = s0;
        int bound = cols & -16, i = 0;
        for (; i < bound; i += 16) {
            FloatVector xv = FloatVector.fromArray(F512, x, i);
            s0 = bf16x16(b, b0 + i).fma(xv, s0);
            s1 = bf16x16(b, b1 + i).fma(xv, s1);
            s2 = bf16x16(b, b2 + i).fma(xv, s2);
            s3 = bf16x16(b, b3 + i).fma(xv, s3);
        }
        float r0 = s0.reduceLanes(VectorOperators.ADD), r1 = s1.reduceLanes(VectorOperators.ADD);
        float r2 = s2.reduceLanes(VectorOperators.ADD), r3 = s3.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float xi = x[i];
            r0 = Math.fma(Numerics.bf16ToFloat(b[b0 + i]), xi, r0);
            r1 = Math.fma(Numerics.bf16ToFloat(b[b1 + i]), xi, r1);
            r2 = Math.fma(Numerics.bf16ToFloat(b[b2 + i]), xi, r2);
            r3 = Math.fma(Numerics.bf16ToFloat(b[b3 + i]), xi, r3);
        }
        y[o] = r0; y[o + 1] = r1; y[o + 2] = r2; y[o + 3] = r3;
    }

    private static void gemvF16x4(short[] b, int cols, float[] x, float[] y, int o) {
        int b0 = o * cols, b1 = b0 + cols, b2 = b1 + cols, b3 = b2 + cols;
        FloatVector s0 = FloatVector.zero(F512), s1 = s0, s2 = s0, s3 = s0;
        int bound = cols & -16, i = 0;
        for (; i < bound; i += 16) {
            FloatVector xv = FloatVector.fromArray(F512, x, i);
            s0 = f16x16(b, b0 + i).fma(xv, s0);
            s1 = f16x16(b, b1 + i).fma(xv, s1);
            s2 = f16x16(b, b2 + i).fma(xv, s2);
            s3 = f16x16(b, b3 + i).fma(xv, s3);
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
        y[o] = r0; y[o + 1] = r1; y[o + 2] = r2; y[o + 3] = r3;
    }

    /** Σ a[aOff+i]·x[xOff+i], i &lt; n. */
    static float dotF32(float[] a, int aOff, float[] x, int xOff, int n) {
        FloatVector s = FloatVector.zero(F512);
        int bound = n & -16, i = 0;
        for (; i < bound; i += 16) s = FloatVector.fromArray(F512, a, aOff + i).fma(FloatVector.fromArray(F512, x, xOff + i), s);
        float r = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(a[aOff + i], x[xOff + i], r);
        return r;
    }

    static float dotBf16(short[] b, int bOff, float[] x, int xOff, int n) {
        FloatVector s = FloatVector.zero(F512);
        int bound = n & -16, i = 0;
        for (; i < bound; i += 16) s = bf16x16(b, bOff + i).fma(FloatVector.fromArray(F512, x, xOff + i), s);
        float r = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(Numerics.bf16ToFloat(b[bOff + i]), x[xOff + i], r);
        return r;
    }

    static float dotF16(short[] b, int bOff, float[] x, int xOff, int n) {
        FloatVector s = FloatVector.zero(F512);
        int bound = n & -16, i = 0;
        for (; i < bound; i += 16) s = f16x16(b, bOff + i).fma(FloatVector.fromArray(F512, x, xOff + i), s);
        float r = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r = Math.fma(Float.float16ToFloat(b[bOff + i]), x[xOff + i], r);
        return r;
    }

    // ---------------------------------------------------------------- GEMM (T > 1)

    /** Lanes used for the token group starting at token t0 (16 for full groups, else 4, 8 or 16). */
    static int groupLanes(int T, int t0) {
        int r = Math.min(G, T - t0);
        return r <= 4 ? 4 : r <= 8 ? 8 : 16;
    }

    /**
     * Transposes x [T, cols] into token-group panels: group g (tokens 16g ..) starts at g·16·cols and
     * holds xT[i·L + j] = x[(16g + j)·cols + i] for its L lanes (zero-padded past T).
     *
     * @return panels [ceil(T/16) groups][cols][L]
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
        float[] ws = new float[R * KC];                  // [R][KC] widened weight block
        float[] acc = new float[groups * R * G];         // [groups][R][L] partial sums
        int o = from;
        for (; o + R <= to; o += R) {
            java.util.Arrays.fill(acc, 0f);
            for (int k0 = 0; k0 < cols; k0 += KC) {
                int kc = Math.min(KC, cols - k0);
                float[] src;
                int srcOff, stride;
                if (w.dtype() == DType.F32) {
                    src = w.f32(); srcOff = o * cols + k0; stride = cols;
                } else {
                    widen(w, o, k0, kc, ws);
                    src = ws; srcOff = 0; stride = KC;
                }
                int g = 0;
                for (; g + 2 <= groups && groupLanes(T, (g + 1) * G) == G; g += 2) {
                    int x0 = g * G * cols + k0 * G;
                    tile16x2(src, srcOff, stride, xT, x0, x0 + G * cols, kc, acc, g * R * G);
                }
                for (; g < groups; g++) {
                    int L = groupLanes(T, g * G);
                    int xo = g * G * cols + k0 * L, ao = g * R * G;
                    if (L == 16) tile16(src, srcOff, stride, xT, xo, kc, acc, ao);
                    else if (L == 8) tile8(src, srcOff, stride, xT, xo, kc, acc, ao);
                    else tile4(src, srcOff, stride, xT, xo, kc, acc, ao);
                }
            }
            for (int g = 0; g < groups; g++) {
                int t0 = g * G, nt = Math.min(G, T - t0), L = groupLanes(T, t0);
                for (int r = 0; r < R; r++)
                    for (int j = 0; j < nt; j++) y[(t0 + j) * rows + o + r] = acc[g * R * G + r * L + j];
            }
        }
        for (; o < to; o++) gemmRowTail(w, xT, T, y, o);
    }

    /** One row o for all tokens (tail of a row range shorter than a tile). */
    private static void gemmRowTail(Matrix w, float[] xT, int T, float[] y, int o) {
        int cols = w.cols(), rows = w.rows();
        float[] row = new float[cols];
        w.row(o, row, 0);
        for (int t = 0; t < T; t++) {
            int g = t / G, L = groupLanes(T, g * G), j = t - g * G, base = g * G * cols;
            float s = 0;
            for (int i = 0; i < cols; i++) s = Math.fma(row[i], xT[base + i * L + j], s);
            y[t * rows + o] = s;
        }
    }

    /** Widens w[o .. o+R, k0 .. k0+kc) into ws[r·KC + k]. */
    private static void widen(Matrix w, int o, int k0, int kc, float[] ws) {
        short[] b = w.bits();
        int cols = w.cols(), bound = kc & -16;
        boolean bf = w.dtype() == DType.BF16;
        for (int r = 0; r < R; r++) {
            int base = (o + r) * cols + k0, dst = r * KC;
            if (bf) widenBf16(b, base, ws, dst, bound);
            else widenF16(b, base, ws, dst, bound);
            for (int k = bound; k < kc; k++)
                ws[dst + k] = bf ? Numerics.bf16ToFloat(b[base + k]) : Float.float16ToFloat(b[base + k]);
        }
    }

    private static void widenBf16(short[] b, int base, float[] ws, int dst, int bound) {
        for (int k = 0; k < bound; k += 16) bf16x16(b, base + k).intoArray(ws, dst + k);
    }

    private static void widenF16(short[] b, int base, float[] ws, int dst, int bound) {
        for (int k = 0; k < bound; k += 16) f16x16(b, base + k).intoArray(ws, dst + k);
    }

    /**
     * acc[r][0..16) += Σ_k w[r·stride + k] · xT[k·16 .. +16) for r &lt; 8, k &lt; kc (16-token group).
     */
    private static void tile16(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao) {
        FloatVector a0 = FloatVector.fromArray(F512, acc, ao), a1 = FloatVector.fromArray(F512, acc, ao + 16);
        FloatVector a2 = FloatVector.fromArray(F512, acc, ao + 32), a3 = FloatVector.fromArray(F512, acc, ao + 48);
        FloatVector a4 = FloatVector.fromArray(F512, acc, ao + 64), a5 = FloatVector.fromArray(F512, acc, ao + 80);
        FloatVector a6 = FloatVector.fromArray(F512, acc, ao + 96), a7 = FloatVector.fromArray(F512, acc, ao + 112);
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws, w6 = w5 + ws, w7 = w6 + ws;
        for (int k = 0; k < kc; k++) {
            FloatVector xv = FloatVector.fromArray(F512, xT, xo + k * 16);
            a0 = xv.fma(FloatVector.broadcast(F512, w[w0 + k]), a0);
            a1 = xv.fma(FloatVector.broadcast(F512, w[w1 + k]), a1);
            a2 = xv.fma(FloatVector.broadcast(F512, w[w2 + k]), a2);
            a3 = xv.fma(FloatVector.broadcast(F512, w[w3 + k]), a3);
            a4 = xv.fma(FloatVector.broadcast(F512, w[w4 + k]), a4);
            a5 = xv.fma(FloatVector.broadcast(F512, w[w5 + k]), a5);
            a6 = xv.fma(FloatVector.broadcast(F512, w[w6 + k]), a6);
            a7 = xv.fma(FloatVector.broadcast(F512, w[w7 + k]), a7);
        }
        a0.intoArray(acc, ao); a1.intoArray(acc, ao + 16); a2.intoArray(acc, ao + 32); a3.intoArray(acc, ao + 48);
        a4.intoArray(acc, ao + 64); a5.intoArray(acc, ao + 80); a6.intoArray(acc, ao + 96); a7.intoArray(acc, ao + 112);
    }

    /** As {@link #tile16} for two full 16-token groups at once (panels at xo and xo2, acc at ao and ao+128). */
    private static void tile16x2(float[] w, int wo, int ws, float[] xT, int xo, int xo2, int kc, float[] acc, int ao) {
        int bo = ao + R * G;
        FloatVector a0 = FloatVector.fromArray(F512, acc, ao), a1 = FloatVector.fromArray(F512, acc, ao + 16);
        FloatVector a2 = FloatVector.fromArray(F512, acc, ao + 32), a3 = FloatVector.fromArray(F512, acc, ao + 48);
        FloatVector a4 = FloatVector.fromArray(F512, acc, ao + 64), a5 = FloatVector.fromArray(F512, acc, ao + 80);
        FloatVector a6 = FloatVector.fromArray(F512, acc, ao + 96), a7 = FloatVector.fromArray(F512, acc, ao + 112);
        FloatVector c0 = FloatVector.fromArray(F512, acc, bo), c1 = FloatVector.fromArray(F512, acc, bo + 16);
        FloatVector c2 = FloatVector.fromArray(F512, acc, bo + 32), c3 = FloatVector.fromArray(F512, acc, bo + 48);
        FloatVector c4 = FloatVector.fromArray(F512, acc, bo + 64), c5 = FloatVector.fromArray(F512, acc, bo + 80);
        FloatVector c6 = FloatVector.fromArray(F512, acc, bo + 96), c7 = FloatVector.fromArray(F512, acc, bo + 112);
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws, w6 = w5 + ws, w7 = w6 + ws;
        for (int k = 0; k < kc; k++) {
            FloatVector xv = FloatVector.fromArray(F512, xT, xo + k * 16);
            FloatVector xu = FloatVector.fromArray(F512, xT, xo2 + k * 16);
            FloatVector b;
            b = FloatVector.broadcast(F512, w[w0 + k]); a0 = xv.fma(b, a0); c0 = xu.fma(b, c0);
            b = FloatVector.broadcast(F512, w[w1 + k]); a1 = xv.fma(b, a1); c1 = xu.fma(b, c1);
            b = FloatVector.broadcast(F512, w[w2 + k]); a2 = xv.fma(b, a2); c2 = xu.fma(b, c2);
            b = FloatVector.broadcast(F512, w[w3 + k]); a3 = xv.fma(b, a3); c3 = xu.fma(b, c3);
            b = FloatVector.broadcast(F512, w[w4 + k]); a4 = xv.fma(b, a4); c4 = xu.fma(b, c4);
            b = FloatVector.broadcast(F512, w[w5 + k]); a5 = xv.fma(b, a5); c5 = xu.fma(b, c5);
            b = FloatVector.broadcast(F512, w[w6 + k]); a6 = xv.fma(b, a6); c6 = xu.fma(b, c6);
            b = FloatVector.broadcast(F512, w[w7 + k]); a7 = xv.fma(b, a7); c7 = xu.fma(b, c7);
        }
        a0.intoArray(acc, ao); a1.intoArray(acc, ao + 16); a2.intoArray(acc, ao + 32); a3.intoArray(acc, ao + 48);
        a4.intoArray(acc, ao + 64); a5.intoArray(acc, ao + 80); a6.intoArray(acc, ao + 96); a7.intoArray(acc, ao + 112);
        c0.intoArray(acc, bo); c1.intoArray(acc, bo + 16); c2.intoArray(acc, bo + 32); c3.intoArray(acc, bo + 48);
        c4.intoArray(acc, bo + 64); c5.intoArray(acc, bo + 80); c6.intoArray(acc, bo + 96); c7.intoArray(acc, bo + 112);
    }

    /** As {@link #tile16} for a group of ≤ 8 tokens (8 lanes, acc rows of 8). */
    private static void tile8(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao) {
        FloatVector a0 = FloatVector.fromArray(F256, acc, ao), a1 = FloatVector.fromArray(F256, acc, ao + 8);
        FloatVector a2 = FloatVector.fromArray(F256, acc, ao + 16), a3 = FloatVector.fromArray(F256, acc, ao + 24);
        FloatVector a4 = FloatVector.fromArray(F256, acc, ao + 32), a5 = FloatVector.fromArray(F256, acc, ao + 40);
        FloatVector a6 = FloatVector.fromArray(F256, acc, ao + 48), a7 = FloatVector.fromArray(F256, acc, ao + 56);
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws, w6 = w5 + ws, w7 = w6 + ws;
        for (int k = 0; k < kc; k++) {
            FloatVector xv = FloatVector.fromArray(F256, xT, xo + k * 8);
            a0 = xv.fma(FloatVector.broadcast(F256, w[w0 + k]), a0);
            a1 = xv.fma(FloatVector.broadcast(F256, w[w1 + k]), a1);
            a2 = xv.fma(FloatVector.broadcast(F256, w[w2 + k]), a2);
            a3 = xv.fma(FloatVector.broadcast(F256, w[w3 + k]), a3);
            a4 = xv.fma(FloatVector.broadcast(F256, w[w4 + k]), a4);
            a5 = xv.fma(FloatVector.broadcast(F256, w[w5 + k]), a5);
            a6 = xv.fma(FloatVector.broadcast(F256, w[w6 + k]), a6);
            a7 = xv.fma(FloatVector.broadcast(F256, w[w7 + k]), a7);
        }
        a0.intoArray(acc, ao); a1.intoArray(acc, ao + 8); a2.intoArray(acc, ao + 16); a3.intoArray(acc, ao + 24);
        a4.intoArray(acc, ao + 32); a5.intoArray(acc, ao + 40); a6.intoArray(acc, ao + 48); a7.intoArray(acc, ao + 56);
    }

    /** As {@link #tile16} for a group of ≤ 4 tokens (4 lanes, acc rows of 4). */
    private static void tile4(float[] w, int wo, int ws, float[] xT, int xo, int kc, float[] acc, int ao) {
        FloatVector a0 = FloatVector.fromArray(F128, acc, ao), a1 = FloatVector.fromArray(F128, acc, ao + 4);
        FloatVector a2 = FloatVector.fromArray(F128, acc, ao + 8), a3 = FloatVector.fromArray(F128, acc, ao + 12);
        FloatVector a4 = FloatVector.fromArray(F128, acc, ao + 16), a5 = FloatVector.fromArray(F128, acc, ao + 20);
        FloatVector a6 = FloatVector.fromArray(F128, acc, ao + 24), a7 = FloatVector.fromArray(F128, acc, ao + 28);
        int w0 = wo, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws, w6 = w5 + ws, w7 = w6 + ws;
        for (int k = 0; k < kc; k++) {
            FloatVector xv = FloatVector.fromArray(F128, xT, xo + k * 4);
            a0 = xv.fma(FloatVector.broadcast(F128, w[w0 + k]), a0);
            a1 = xv.fma(FloatVector.broadcast(F128, w[w1 + k]), a1);
            a2 = xv.fma(FloatVector.broadcast(F128, w[w2 + k]), a2);
            a3 = xv.fma(FloatVector.broadcast(F128, w[w3 + k]), a3);
            a4 = xv.fma(FloatVector.broadcast(F128, w[w4 + k]), a4);
            a5 = xv.fma(FloatVector.broadcast(F128, w[w5 + k]), a5);
            a6 = xv.fma(FloatVector.broadcast(F128, w[w6 + k]), a6);
            a7 = xv.fma(FloatVector.broadcast(F128, w[w7 + k]), a7);
        }
        a0.intoArray(acc, ao); a1.intoArray(acc, ao + 4); a2.intoArray(acc, ao + 8); a3.intoArray(acc, ao + 12);
        a4.intoArray(acc, ao + 16); a5.intoArray(acc, ao + 20); a6.intoArray(acc, ao + 24); a7.intoArray(acc, ao + 28);
    }
}
