package dev.bdserve.tensor;

import static dev.bdserve.tensor.Widening.bf16;
import static dev.bdserve.tensor.Widening.f16;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The packed GEMM for T &gt; {@value MatMul#SMALL_T} tokens. x is first transposed into token-group panels
 * ({@code xT[i][G]}: the values of input feature i for G = 2·VL tokens), so the micro-kernel is vectorized along
 * tokens and needs no horizontal reduction. For each tile of {@value #R} weight rows and each block of
 * {@value #KC} input features the weights are widened once into an fp32 scratch (F32 weights are copied); then for
 * every token group and every feature k, the weight w[o,k] is broadcast and FMA'd into 2·R accumulator vectors
 * (R rows × 2 token vectors), so each widened weight is reused across all T tokens. A last group of at most VL
 * tokens uses one token vector.
 */
final class Gemm {
    private Gemm() {}

    /** Float species of the kernels ({@link VectorWidth}): a static final constant, so C2 compiles the vector code. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();

    /** Weight rows per GEMM tile: the R×2 accumulator vectors and two x vectors fit AVX2's 16 vector registers. */
    static final int R = 6;
    /** Input features per GEMM block: the fp32 weight scratch is R×KC floats (6 KB, L1-resident). */
    static final int KC = 256;

    /**
     * Matrices at most this wide are widened a whole tile of R rows at a time: R·cols contiguous weights
     * read as one stream, which helps while the widened rows fit L1 (Llama-160M's 768-wide shapes); wider matrices
     * keep KC-wide pieces (docs/bench/kernels.md).
     */
    static final int WHOLE_ROWS = 1024;

    /**
     * Keeps the GEMM's read-ahead loads live. Read-ahead: while a tile computes, its micro-kernel also loads one
     * weight of the next tile per k (R apart, a scalar load XOR-ed into a value kept live here), so the next tile's
     * rows stream in while FMAs run instead of in a burst at its widening. Only whole-row tiles (cols ≤ {@link #WHOLE_ROWS}) read
     * ahead, through {@link #tile2Ahead} / {@link #tile1Ahead}: on the wider matrices (KC pieces) it slowed the GEMM,
     * so the plain kernels run there (docs/bench/kernels.md). F32 weights are not read ahead.
     */
    static int sink;
    /** Tokens per group: two float vectors. */
    static final int G = 2 * VL;

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
