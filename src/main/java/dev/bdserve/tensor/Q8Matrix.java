package dev.bdserve.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import java.util.Arrays;

/**
 * A weight [rows, cols] in ggml's Q8_0 format (llama.cpp's {@code block_q8_0}): each run of 32 weights of a row is 32
 * signed bytes q and one fp16 scale d, the weight being d·q; 1.0625 bytes per weight in the file (bf16: 2), 1.125 here,
 * where the scales are held widened to fp32.
 *
 * <p>Held repacked in tiles of {@value #TILE} rows interleaved by column (as llama.cpp's repacked CPU layouts do):
 * within a tile, the 32 quants of column k sit side by side, so one byte load widens to a vector of consecutive
 * rows. Two to four tokens' products widen each weight vector in registers and use it for all of them ({@link
 * #gemmFew}); more tokens' products widen a tile's columns once into a column-major fp32
 * panel (d·q, exact) and run a register-blocked kernel of two row vectors × {@value #TOKENS} tokens that broadcasts
 * one activation per FMA pair: it needs no horizontal sums and no repacking of the activations, and keeps the FMA
 * units busy where a kernel vectorized along tokens waits on broadcast loads of weights. One token's product ({@link
 * #gemv}) sums each block's q·x per row in fp32 and scales it by d once, four tiles read side by side. For T &gt; 1
 * both paths sum Σ (d·q)·x in one order, so a token's product does not depend on the batch around it.
 * Activations stay fp32 (llama.cpp rounds them to 8-bit blocks). {@link #matmulScalar} is the fp64 twin.
 */
public final class Q8Matrix implements Weight {
    /** Weights per block. */
    public static final int BLOCK = 32;
    /** Rows per tile (the last tile of a matrix is padded with zero rows). */
    static final int TILE = 32;
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
    /** Bytes widened per load: VL of them, or 8 (the narrowest byte vector) when VL is 4. */
    static final VectorSpecies<Byte> BS = VL >= 8 ? VectorSpecies.of(byte.class, jdk.incubator.vector.VectorShape.forBitSize(VL * 8))
            : ByteVector.SPECIES_64;
    /** Float vectors per byte load: 1, or 2 when VL is 4. */
    static final int PARTS = BS.length() / VL;

    private final int rows, cols, tiles, bpr;   // bpr: blocks per row
    private final byte[] q;      // [tiles][cols][TILE] q[(t·cols + k)·TILE + r]: quant k of row t·TILE + r (0 past rows)
    /**
     * [tiles][bpr][TILE] d[(t·bpr + b)·TILE + r]: the scale of block b of that row, widened from fp16 once here (exact):
     * the kernels load it as a float vector, with no fp16 widening in the methods that carry their hot loops, where
     * C2 could leave that helper uninlined and box its vectors (docs/bench/kernels.md, Q8_0's slow mode).
     */
    private final float[] d;

    /**
     * A Q8_0 weight from its quants [rows·cols] and fp16 scales [rows·cols/32], both row-major as a GGUF file holds
     * them (block b of row o at o·cols/32 + b); they are repacked, not kept.
     */
    public Q8Matrix(int rows, int cols, byte[] q, short[] d) {
        if (rows <= 0 || cols <= 0 || cols % BLOCK != 0)
            throw new IllegalArgumentException("a Q8_0 weight needs positive rows and a multiple of " + BLOCK + " columns, got " + rows + "x" + cols);
        if (q.length != (long) rows * cols || d.length != (long) rows * cols / BLOCK)
            throw new IllegalArgumentException("Q8_0 storage does not match " + rows + "x" + cols + ": " + q.length + " quants, " + d.length + " scales");
        this.rows = rows;
        this.cols = cols;
        this.bpr = cols / BLOCK;
        this.tiles = (rows + TILE - 1) / TILE;
        this.q = new byte[Math.multiplyExact(tiles * TILE, cols)];
        this.d = new float[tiles * TILE * bpr];
        for (int o = 0; o < rows; o++) {
            int t = o / TILE, r = o % TILE;
            for (int k = 0; k < cols; k++) this.q[(t * cols + k) * TILE + r] = q[o * cols + k];
            for (int b = 0; b < bpr; b++) this.d[(t * bpr + b) * TILE + r] = Float.float16ToFloat(d[o * bpr + b]);
        }
    }

    /** Rows [from, to) as a weight of their own (copies). */
    @Override public Q8Matrix sliceRows(int from, int to) {
        if (from < 0 || to > rows || from >= to) throw new IllegalArgumentException("rows [" + from + ", " + to + ") outside " + rows);
        byte[] rq = new byte[(to - from) * cols];
        short[] rd = new short[(to - from) * bpr];
        rowMajor(from, to, rq, rd, 0);
        return new Q8Matrix(to - from, cols, rq, rd);
    }

    /** Rows [from, to) into row-major quants and scales at row {@code at}. */
    private void rowMajor(int from, int to, byte[] rq, short[] rd, int at) {
        for (int o = from; o < to; o++) {
            int t = o / TILE, r = o % TILE, dst = at + o - from;
            for (int k = 0; k < cols; k++) rq[dst * cols + k] = q[(t * cols + k) * TILE + r];
            for (int b = 0; b < bpr; b++) rd[dst * bpr + b] = Float.floatToFloat16(d[(t * bpr + b) * TILE + r]);   // exact: an fp16 value
        }
    }

    @Override public Weight joinRows(Weight... more) {
        Q8Matrix[] all = new Q8Matrix[more.length + 1];
        all[0] = this;
        for (int i = 0; i < more.length; i++) {
            if (!(more[i] instanceof Q8Matrix m)) return null;
            all[i + 1] = m;
        }
        return concatRows(all);
    }

    /** The rows of several Q8_0 weights of equal width, one after another (q/k/v fused). */
    public static Q8Matrix concatRows(Q8Matrix... parts) {
        int cols = parts[0].cols, rows = 0;
        for (Q8Matrix p : parts) {
            if (p.cols != cols) throw new IllegalArgumentException("cannot stack Q8_0 weights of " + cols + " and " + p.cols + " columns");
            rows = Math.addExact(rows, p.rows);
        }
        byte[] q = new byte[Math.multiplyExact(rows, cols)];
        short[] d = new short[rows * (cols / BLOCK)];
        int at = 0;
        for (Q8Matrix p : parts) {
            p.rowMajor(0, p.rows, q, d, at);
            at += p.rows;
        }
        return new Q8Matrix(rows, cols, q, d);
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    /** The bytes of the rows' quants and fp32 scales (a partial last tile's padding not counted). */
    @Override public long bytes() { return (long) rows * cols + 4L * rows * bpr; }
    @Override public String format() { return "q8_0"; }

    /** Quant i of row o. */
    int quant(int o, int i) { return q[((o / TILE) * cols + i) * TILE + o % TILE]; }

    /** The scale of block b of row o. */
    float scale(int o, int b) { return d[((o / TILE) * bpr + b) * TILE + o % TILE]; }

    /** Row r as d·q per block (exact: each product is one fp32 rounding, as ggml's dequantisation). */
    @Override public void row(int r, float[] dst, int off) {
        if (r < 0 || r >= rows) throw new IllegalArgumentException("row " + r + " outside " + rows);
        if (off < 0 || off + cols > dst.length) throw new IllegalArgumentException("dst has no room for " + cols + " values at " + off);
        for (int b = 0; b < bpr; b++) {
            float s = scale(r, b);
            for (int i = b * BLOCK; i < (b + 1) * BLOCK; i++) dst[off + i] = s * quant(r, i);
        }
    }

    @Override public void matmul(float[] x, int T, float[] y, Parallel par) {
        if (T < 1) throw new IllegalArgumentException("T must be >= 1: " + T);
        if ((long) T * cols > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + cols);
        if ((long) T * rows > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + rows);
        if (T == 1) {
            par.forRange(tiles, 1, (s, e) -> gemv(x, y, s, e));
            return;
        }
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
                        FloatVector w = quants(qo).mul(s0), u = quantsHigh(qo).mul(s1);
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
                    quants(qo).mul(s0).intoArray(panel, po);
                    quantsHigh(qo).mul(s1).intoArray(panel, po + VL);
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

    // ---- one token: per-block sums, four tiles side by side ----

    /** y[o] = row o · x for the rows of tiles [from, to): the range's four quarters walked side by side (four streams). */
    private void gemv(float[] x, float[] y, int from, int to) {
        int quarter = (to - from) / 4;
        float[] out = new float[4 * TILE];               // [4][TILE] the four tiles' sums
        for (int i = 0; i < quarter; i++) gemvTiles(x, y, from + i, from + quarter + i, from + 2 * quarter + i, from + 3 * quarter + i, out);
        for (int t = from + 4 * quarter; t < to; t++) gemvTiles(x, y, t, t, t, t, out);
    }

    /** Tiles a, b, c, e (all four equal for a lone tile) against x, into y. */
    private void gemvTiles(float[] x, float[] y, int a, int b, int c, int e, float[] out) {
        for (int v0 = 0; v0 < TILE; v0 += PAIR) {
            FloatVector sa0 = FloatVector.zero(FS), sa1 = sa0, sb0 = sa0, sb1 = sa0;   // Σ_blocks d·(Σ q·x), rows v0 ..
            FloatVector sc0 = sa0, sc1 = sa0, se0 = sa0, se1 = sa0;
            for (int blk = 0; blk < bpr; blk++) {
                FloatVector pa0 = FloatVector.zero(FS), pa1 = pa0, pb0 = pa0, pb1 = pa0;   // this block's Σ q·x
                FloatVector pc0 = pa0, pc1 = pa0, pe0 = pa0, pe1 = pa0;
                for (int k = blk * BLOCK; k < (blk + 1) * BLOCK; k++) {
                    FloatVector xk = FloatVector.broadcast(FS, x[k]);
                    int qa = (a * cols + k) * TILE + v0, qb = (b * cols + k) * TILE + v0;
                    int qc = (c * cols + k) * TILE + v0, qe = (e * cols + k) * TILE + v0;
                    pa0 = quants(qa).fma(xk, pa0);
                    pa1 = quantsHigh(qa).fma(xk, pa1);
                    pb0 = quants(qb).fma(xk, pb0);
                    pb1 = quantsHigh(qb).fma(xk, pb1);
                    pc0 = quants(qc).fma(xk, pc0);
                    pc1 = quantsHigh(qc).fma(xk, pc1);
                    pe0 = quants(qe).fma(xk, pe0);
                    pe1 = quantsHigh(qe).fma(xk, pe1);
                }
                int da = (a * bpr + blk) * TILE + v0, db = (b * bpr + blk) * TILE + v0;
                int dc = (c * bpr + blk) * TILE + v0, de = (e * bpr + blk) * TILE + v0;
                sa0 = pa0.fma(FloatVector.fromArray(FS, d, da), sa0);
                sa1 = pa1.fma(FloatVector.fromArray(FS, d, da + VL), sa1);
                sb0 = pb0.fma(FloatVector.fromArray(FS, d, db), sb0);
                sb1 = pb1.fma(FloatVector.fromArray(FS, d, db + VL), sb1);
                sc0 = pc0.fma(FloatVector.fromArray(FS, d, dc), sc0);
                sc1 = pc1.fma(FloatVector.fromArray(FS, d, dc + VL), sc1);
                se0 = pe0.fma(FloatVector.fromArray(FS, d, de), se0);
                se1 = pe1.fma(FloatVector.fromArray(FS, d, de + VL), se1);
            }
            sa0.intoArray(out, v0);
            sa1.intoArray(out, v0 + VL);
            sb0.intoArray(out, TILE + v0);
            sb1.intoArray(out, TILE + v0 + VL);
            sc0.intoArray(out, 2 * TILE + v0);
            sc1.intoArray(out, 2 * TILE + v0 + VL);
            se0.intoArray(out, 3 * TILE + v0);
            se1.intoArray(out, 3 * TILE + v0 + VL);
        }
        int[] tiles = {a, b, c, e};
        for (int i = 0; i < 4; i++)
            if (i == 0 || tiles[i] != a) System.arraycopy(out, i * TILE, y, tiles[i] * TILE, Math.min(TILE, rows - tiles[i] * TILE));
    }

    /** Tiles of {@link #TILE} rows (the last one padded with zero rows). */
    public int tiles() { return tiles; }

    /** Rows per tile. */
    public static int tileRows() { return TILE; }

    /**
     * Tiles [from, to) dequantized to bf16 (d·q, exact in fp32, rounded to nearest even; scales assumed finite) into
     * dst in oneDNN's {@code BA16a32b2a} layout of the [cols, 32·(to − from)] transposed weight: per tile, per 16
     * columns, per column pair, the tile's 32 rows, each with its two columns side by side,
     * {@code dst[(((t − from)·cols/16 + k/16)·8 + (k%16)/2)·64 + 2r + k%2]} for row r of tile t, column k. These are
     * the quants' tiles with each column pair interleaved: the layout the bf16 matmul reads without reordering.
     */
    public void tilesToBf16(int from, int to, MemorySegment dst) {
        checkTiles(from, to, dst);
        float[] s = new float[TILE];
        for (int t = from; t < to; t++) {
            long out = (long) (t - from) * cols * TILE * 2;
            for (int b = 0; b < bpr; b++) {
                System.arraycopy(d, (t * bpr + b) * TILE, s, 0, TILE);
                for (int r = 0; r < TILE; r += PAIR) {
                    FloatVector s0 = FloatVector.fromArray(FS, s, r), s1 = FloatVector.fromArray(FS, s, r + VL);
                    for (int k = b * BLOCK; k < (b + 1) * BLOCK; k += 2) {
                        int qi = (t * cols + k) * TILE + r;
                        long o = out + ((long) (k / 2) * 2 * TILE + 2L * r) * 2;       // pair k/2: 64 shorts each
                        Bf16Pack.pairFinite(quants(qi).mul(s0), quants(qi + TILE).mul(s0)).intoMemorySegment(dst, o, ByteOrder.LITTLE_ENDIAN);
                        Bf16Pack.pairFinite(quantsHigh(qi).mul(s1), quantsHigh(qi + TILE).mul(s1))
                                .intoMemorySegment(dst, o + 4L * VL, ByteOrder.LITTLE_ENDIAN);
                    }
                }
            }
        }
    }

    /** The scalar twin of {@link #tilesToBf16}. */
    public void tilesToBf16Scalar(int from, int to, MemorySegment dst) {
        checkTiles(from, to, dst);
        for (int t = from; t < to; t++)
            for (int k = 0; k < cols; k++)
                for (int r = 0; r < TILE; r++) {
                    float w = d[(t * bpr + k / BLOCK) * TILE + r] * q[(t * cols + k) * TILE + r];
                    long i = (((long) (t - from) * cols / 16 + k / 16) * 8 + (k % 16) / 2) * 64 + 2L * r + k % 2;
                    dst.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i, Numerics.floatToBf16(w));
                }
    }

    private void checkTiles(int from, int to, MemorySegment dst) {
        if (from < 0 || to > tiles || from > to) throw new IllegalArgumentException("tiles [" + from + ", " + to + ") outside " + tiles);
        if (dst.byteSize() < (long) (to - from) * cols * TILE * 2)
            throw new IllegalArgumentException("dst holds " + dst.byteSize() + " bytes, tiles [" + from + ", " + to + ") need " + (long) (to - from) * cols * TILE * 2);
    }

    /** The VL quants at q[i ..] as floats. */
    private FloatVector quants(int i) { return widen(ByteVector.fromArray(BS, q, i), 0); }

    /** The VL quants at q[i + VL ..] as floats: the second half of the load at i when it holds both (VL 4). */
    private FloatVector quantsHigh(int i) { return PARTS == 2 ? widen(ByteVector.fromArray(BS, q, i), 1) : quants(i + VL); }

    /** Part p of a byte vector as VL floats. */
    private static FloatVector widen(ByteVector v, int p) { return (FloatVector) v.convertShape(VectorOperators.B2F, FS, p); }

    /** The scalar twin: y[t·rows + o] = Σ_b d_b Σ_i q·x, accumulated in fp64 and rounded once. */
    public void matmulScalar(float[] x, int T, float[] y) {
        for (int o = 0; o < rows; o++)
            for (int t = 0; t < T; t++) {
                double s = 0;
                for (int b = 0; b < bpr; b++) {
                    double blk = 0;
                    for (int i = 0; i < BLOCK; i++) blk += (double) quant(o, b * BLOCK + i) * x[t * cols + b * BLOCK + i];
                    s += blk * scale(o, b);
                }
                y[t * rows + o] = (float) s;
            }
    }

    @Override public String toString() { return "Q8Matrix[" + rows + "x" + cols + "]"; }
}
