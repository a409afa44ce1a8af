package dev.bdserve.tensor;

import static dev.bdserve.tensor.Q8Matrix.BLOCK;
import static dev.bdserve.tensor.Q8Matrix.TILE;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The batched products (T &gt; 1 tokens) of one {@link Q8Matrix}, over its tiled quants and fp32 scales (shared, not
 * copied). Two to four tokens' products widen each weight vector in registers and use it for all of them ({@link
 * #gemmFew}); more tokens' products widen a tile's columns once into a column-major fp32 panel (d·q, exact) and run a
 * register-blocked kernel of two row vectors × {@value #TOKENS} tokens that broadcasts one activation per FMA pair
 * ({@link #gemm}): it needs no horizontal sums and no repacking of the activations, and keeps the FMA units busy where
 * a kernel vectorized along tokens waits on broadcast loads of weights. Both paths sum Σ (d·q)·x in one order, so a
 * token's product does not depend on the batch around it.
 *
 * <p>The species are this class's own static final fields, as in every kernel class: C2 compiles vector code only for
 * a species it sees as a constant (one passed as a parameter runs many times slower).
 */
final class Q8Gemm {
    /** Tokens per micro-kernel call: 12 accumulators, two weight vectors and a broadcast fit AVX2's 16 registers. */
    static final int TOKENS = 6;
    /** Token counts up to this widen weights in registers ({@link #gemmFew}); more widen panels ({@link #gemm}). */
    static final int FEW = 4;
    /** Columns widened per panel: [KC][TILE] fp32 is 64 KB. */
    static final int KC = 512;

    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Rows per kernel pass: two float vectors (a whole tile at 512 bits, a part of one at narrower widths). */
    static final int PAIR = 2 * VL;

    private final int rows, cols, tiles, bpr;   // bpr: blocks per row
    private final byte[] q;      // [tiles][cols][TILE] the matrix's quants, in Q8Matrix's tiles
    private final float[] d;     // [tiles][bpr][TILE] the matrix's block scales, widened to fp32

    /** The products of the matrix [rows, cols] held as these tiled quants and scales. */
    Q8Gemm(int rows, int cols, byte[] q, float[] d) {
        this.rows = rows;
        this.cols = cols;
        this.bpr = cols / BLOCK;
        this.tiles = (rows + TILE - 1) / TILE;
        this.q = q;
        this.d = d;
    }

    /** y[t·rows + o] = row o · x_t for T &gt; 1 tokens (the caller checked the shapes), the tiles split over par. */
    void matmul(float[] x, int T, float[] y, Parallel par) {
        float[] xz = new float[(T + 1) * cols];          // [T + 1, cols] x and a zero row for the kernels' idle token slots
        System.arraycopy(x, 0, xz, 0, T * cols);
        if (T <= FEW) par.forRange(tiles, 1, (s, e) -> gemmFew(xz, T, y, s, e));
        else par.forRange(tiles, 1, (s, e) -> gemm(xz, T, y, s, e));
    }

    // ---- two to four tokens: weights widened in registers ----

    /**
     * y[t·rows + o] for T ≤ {@value #FEW} tokens and the rows of tiles [from, to): each weight vector is widened and
     * scaled in registers and used for every token at once, with no panel (too few tokens to repay one). The sums
     * run in the same order as {@link #gemm}'s, so both give the same bits.
     */
    private void gemmFew(float[] xz, int T, float[] y, int from, int to) {
        int zero = T * cols;
        int x0 = xRow(0, T, zero), x1 = xRow(1, T, zero), x2 = xRow(2, T, zero), x3 = xRow(3, T, zero);
        float[] out = new float[FEW * TILE];             // [FEW][TILE] one tile's sums per token slot
        for (int t = from; t < to; t++) {
            for (int v0 = 0; v0 < TILE; v0 += PAIR) {
                FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
                for (int b = 0; b < bpr; b++) {
                    int db = (t * bpr + b) * TILE + v0;
                    FloatVector s0 = FloatVector.fromArray(FS, d, db), s1 = FloatVector.fromArray(FS, d, db + VL);
                    int qo = (t * cols + b * BLOCK) * TILE + v0;
                    for (int k = b * BLOCK; k < (b + 1) * BLOCK; k++, qo += TILE) {
                        FloatVector w = Q8Matrix.quants(q, qo).mul(s0), u = Q8Matrix.quantsHigh(q, qo).mul(s1);
                        FloatVector e;
                        e = FloatVector.broadcast(FS, xz[x0 + k]); a0 = w.fma(e, a0); c0 = u.fma(e, c0);
                        e = FloatVector.broadcast(FS, xz[x1 + k]); a1 = w.fma(e, a1); c1 = u.fma(e, c1);
                        e = FloatVector.broadcast(FS, xz[x2 + k]); a2 = w.fma(e, a2); c2 = u.fma(e, c2);
                        e = FloatVector.broadcast(FS, xz[x3 + k]); a3 = w.fma(e, a3); c3 = u.fma(e, c3);
                    }
                }
                a0.intoArray(out, v0); c0.intoArray(out, v0 + VL);
                a1.intoArray(out, TILE + v0); c1.intoArray(out, TILE + v0 + VL);
                a2.intoArray(out, 2 * TILE + v0); c2.intoArray(out, 2 * TILE + v0 + VL);
                a3.intoArray(out, 3 * TILE + v0); c3.intoArray(out, 3 * TILE + v0 + VL);
            }
            int n = Math.min(TILE, rows - t * TILE);
            for (int j = 0; j < T; j++) System.arraycopy(out, j * TILE, y, j * rows + t * TILE, n);
        }
    }

    // ---- several tokens: fp32 panels and a 2·VL rows × 6 tokens kernel ----

    /** y[t·rows + o] for every token t and the rows of tiles [from, to), x zero-padded by one row ({@link #matmul}). */
    private void gemm(float[] xz, int T, float[] y, int from, int to) {
        int slots = (T + TOKENS - 1) / TOKENS * TOKENS;
        float[] panel = new float[KC * TILE];            // [KC][TILE] d·q of one tile's columns k0 .. k0 + kc
        float[] acc = new float[slots * TILE];           // [slots][TILE] the tile's sums per token slot
        int zero = T * cols;                             // the zero row of xz
        for (int t = from; t < to; t++) {
            Arrays.fill(acc, 0f);
            for (int k0 = 0; k0 < cols; k0 += KC) {
                int kc = Math.min(KC, cols - k0);
                widenPanel(t, k0, kc, panel);
                for (int t0 = 0; t0 < T; t0 += TOKENS) {
                    int x0 = xRow(t0, T, zero) + k0, x1 = xRow(t0 + 1, T, zero) + k0, x2 = xRow(t0 + 2, T, zero) + k0;
                    int x3 = xRow(t0 + 3, T, zero) + k0, x4 = xRow(t0 + 4, T, zero) + k0, x5 = xRow(t0 + 5, T, zero) + k0;
                    for (int v0 = 0; v0 < TILE; v0 += PAIR)
                        kernel(panel, v0, kc, xz, x0, x1, x2, x3, x4, x5, acc, t0 * TILE + v0);
                }
            }
            int n = Math.min(TILE, rows - t * TILE);
            for (int j = 0; j < T; j++) System.arraycopy(acc, j * TILE, y, j * rows + t * TILE, n);
        }
    }

    /** Where token j's row starts in xz: the zero row for the idle slots past T. */
    private int xRow(int j, int T, int zero) { return j < T ? j * cols : zero; }

    /** panel[(k − k0)·TILE + r] = d·q of row r of tile t, column k, for k in [k0, k0 + kc) (whole blocks). */
    private void widenPanel(int t, int k0, int kc, float[] panel) {
        for (int b = k0 / BLOCK; b < (k0 + kc) / BLOCK; b++)
            for (int r = 0; r < TILE; r += PAIR) {
                int db = (t * bpr + b) * TILE + r;
                FloatVector s0 = FloatVector.fromArray(FS, d, db), s1 = FloatVector.fromArray(FS, d, db + VL);   // the block's scales
                int qo = (t * cols + b * BLOCK) * TILE + r, po = (b * BLOCK - k0) * TILE + r;
                for (int i = 0; i < BLOCK; i++, qo += TILE, po += TILE) {
                    Q8Matrix.quants(q, qo).mul(s0).intoArray(panel, po);
                    Q8Matrix.quantsHigh(q, qo).mul(s1).intoArray(panel, po + VL);
                }
            }
    }

    /**
     * acc[j·TILE + v0 .. + 2·VL) += Σ_k panel[k·TILE + v0 ..] · x_j[k] for the six token rows x_j (offsets into x),
     * k &lt; kc: each weight vector pair loaded once, each activation broadcast once, twelve accumulators.
     */
    private static void kernel(float[] panel, int v0, int kc, float[] x, int x0, int x1, int x2, int x3, int x4, int x5,
                               float[] acc, int ao) {
        FloatVector a0 = FloatVector.fromArray(FS, acc, ao), c0 = FloatVector.fromArray(FS, acc, ao + VL);
        FloatVector a1 = FloatVector.fromArray(FS, acc, ao + TILE), c1 = FloatVector.fromArray(FS, acc, ao + TILE + VL);
        FloatVector a2 = FloatVector.fromArray(FS, acc, ao + 2 * TILE), c2 = FloatVector.fromArray(FS, acc, ao + 2 * TILE + VL);
        FloatVector a3 = FloatVector.fromArray(FS, acc, ao + 3 * TILE), c3 = FloatVector.fromArray(FS, acc, ao + 3 * TILE + VL);
        FloatVector a4 = FloatVector.fromArray(FS, acc, ao + 4 * TILE), c4 = FloatVector.fromArray(FS, acc, ao + 4 * TILE + VL);
        FloatVector a5 = FloatVector.fromArray(FS, acc, ao + 5 * TILE), c5 = FloatVector.fromArray(FS, acc, ao + 5 * TILE + VL);
        for (int k = 0; k < kc; k++) {
            int p = k * TILE + v0;
            FloatVector w = FloatVector.fromArray(FS, panel, p), u = FloatVector.fromArray(FS, panel, p + VL);
            FloatVector b;
            b = FloatVector.broadcast(FS, x[x0 + k]); a0 = w.fma(b, a0); c0 = u.fma(b, c0);
            b = FloatVector.broadcast(FS, x[x1 + k]); a1 = w.fma(b, a1); c1 = u.fma(b, c1);
            b = FloatVector.broadcast(FS, x[x2 + k]); a2 = w.fma(b, a2); c2 = u.fma(b, c2);
            b = FloatVector.broadcast(FS, x[x3 + k]); a3 = w.fma(b, a3); c3 = u.fma(b, c3);
            b = FloatVector.broadcast(FS, x[x4 + k]); a4 = w.fma(b, a4); c4 = u.fma(b, c4);
            b = FloatVector.broadcast(FS, x[x5 + k]); a5 = w.fma(b, a5); c5 = u.fma(b, c5);
        }
        a0.intoArray(acc, ao); c0.intoArray(acc, ao + VL);
        a1.intoArray(acc, ao + TILE); c1.intoArray(acc, ao + TILE + VL);
        a2.intoArray(acc, ao + 2 * TILE); c2.intoArray(acc, ao + 2 * TILE + VL);
        a3.intoArray(acc, ao + 3 * TILE); c3.intoArray(acc, ao + 3 * TILE + VL);
        a4.intoArray(acc, ao + 4 * TILE); c4.intoArray(acc, ao + 4 * TILE + VL);
        a5.intoArray(acc, ao + 5 * TILE); c5.intoArray(acc, ao + 5 * TILE + VL);
    }
}
