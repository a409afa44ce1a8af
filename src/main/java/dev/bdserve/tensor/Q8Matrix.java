package dev.bdserve.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * A weight [rows, cols] in ggml's Q8_0 format (llama.cpp's {@code block_q8_0}): each run of 32 weights of a row is 32
 * signed bytes q and one fp16 scale d, the weight being d·q; 1.0625 bytes per weight in the file (bf16: 2), 1.125 here,
 * where the scales are held widened to fp32.
 *
 * <p>Held repacked in tiles of {@value #TILE} rows interleaved by column (as llama.cpp's repacked CPU layouts do):
 * within a tile, the 32 quants of column k sit side by side, so one byte load widens to a vector of consecutive
 * rows. Products of more than one token run in {@link Q8Gemm}: two to four tokens' widen each weight vector in
 * registers and use it for all of them; more tokens' widen a tile's columns once into a column-major fp32 panel
 * (d·q, exact) and run a register-blocked kernel of two row vectors × {@value Q8Gemm#TOKENS} tokens that broadcasts
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
    private final Q8Gemm batched;   // the products of T > 1 tokens, over q and d

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
        this.batched = new Q8Gemm(rows, cols, this.q, this.d);
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
        batched.matmul(x, T, y, par);
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
                    pa0 = quants(q, qa).fma(xk, pa0);
                    pa1 = quantsHigh(q, qa).fma(xk, pa1);
                    pb0 = quants(q, qb).fma(xk, pb0);
                    pb1 = quantsHigh(q, qb).fma(xk, pb1);
                    pc0 = quants(q, qc).fma(xk, pc0);
                    pc1 = quantsHigh(q, qc).fma(xk, pc1);
                    pe0 = quants(q, qe).fma(xk, pe0);
                    pe1 = quantsHigh(q, qe).fma(xk, pe1);
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
                        Bf16Pack.pairFinite(quants(q, qi).mul(s0), quants(q, qi + TILE).mul(s0)).intoMemorySegment(dst, o, ByteOrder.LITTLE_ENDIAN);
                        Bf16Pack.pairFinite(quantsHigh(q, qi).mul(s1), quantsHigh(q, qi + TILE).mul(s1))
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

    /** The VL quants at q[i ..] as floats (also {@link Q8Gemm}'s, on the same tiles). */
    static FloatVector quants(byte[] q, int i) { return widen(ByteVector.fromArray(BS, q, i), 0); }

    /** The VL quants at q[i + VL ..] as floats: the second half of the load at i when it holds both (VL 4). */
    static FloatVector quantsHigh(byte[] q, int i) { return PARTS == 2 ? widen(ByteVector.fromArray(BS, q, i), 1) : quants(q, i + VL); }

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
