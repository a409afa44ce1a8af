package dev.bdserve.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * A weight [rows, cols] kept in ggml's Q8_0 format (llama.cpp's {@code block_q8_0}): each run of 32 weights of a row
 * is 32 signed bytes q and one fp16 scale d, the weight being d·q. Held as two heap arrays, the bytes [rows·cols] and
 * the scales' fp16 bits [rows·cols/32], so a product streams 1.0625 bytes per weight (bf16: 2).
 *
 * <p>Products keep the activations in fp32 (llama.cpp rounds them to 8-bit blocks first): per block the 32 q·x
 * products are summed in fp32 and scaled by d once. T == 1 streams four rows side by side as {@link Gemv} does; for
 * T > 1 panels of rows are widened to fp32 once and go through the dense kernels ({@link PanelProduct}). {@link #matmulScalar} is the fp64
 * twin.
 */
public final class Q8Matrix implements Weight {
    /** Weights per block. */
    public static final int BLOCK = 32;

    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Bytes widened per load: VL of them, or 8 (the narrowest byte vector) when VL is 4. */
    static final VectorSpecies<Byte> BS = VL >= 8 ? VectorSpecies.of(byte.class, jdk.incubator.vector.VectorShape.forBitSize(VL * 8))
            : ByteVector.SPECIES_64;
    /** Float vectors per byte vector. */
    static final int PARTS = BS.length() / VL;
    /** Rows per parallel chunk boundary. */
    static final int GRAIN = PanelProduct.GRAIN;

    private final int rows, cols;
    private final byte[] q;      // [rows · cols] quants, row-major
    private final short[] d;     // [rows · cols / 32] fp16 scale bits, block b of row o at o·cols/32 + b

    /** A Q8_0 weight from its quants and fp16 scales (taken as they are, not copied). */
    public Q8Matrix(int rows, int cols, byte[] q, short[] d) {
        if (rows <= 0 || cols <= 0 || cols % BLOCK != 0)
            throw new IllegalArgumentException("a Q8_0 weight needs positive rows and a multiple of " + BLOCK + " columns, got " + rows + "x" + cols);
        if (q.length != (long) rows * cols || d.length != (long) rows * cols / BLOCK)
            throw new IllegalArgumentException("Q8_0 storage does not match " + rows + "x" + cols + ": " + q.length + " quants, " + d.length + " scales");
        this.rows = rows;
        this.cols = cols;
        this.q = q;
        this.d = d;
    }

    /** Rows [from, to) as a weight of their own (copies). */
    @Override public Q8Matrix sliceRows(int from, int to) {
        if (from < 0 || to > rows || from >= to) throw new IllegalArgumentException("rows [" + from + ", " + to + ") outside " + rows);
        int bpr = cols / BLOCK;
        return new Q8Matrix(to - from, cols, Arrays.copyOfRange(q, from * cols, to * cols), Arrays.copyOfRange(d, from * bpr, to * bpr));
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
            rows += p.rows;
        }
        byte[] q = new byte[Math.multiplyExact(rows, cols)];
        short[] d = new short[rows * (cols / BLOCK)];
        int qo = 0, dO = 0;
        for (Q8Matrix p : parts) {
            System.arraycopy(p.q, 0, q, qo, p.q.length);
            System.arraycopy(p.d, 0, d, dO, p.d.length);
            qo += p.q.length;
            dO += p.d.length;
        }
        return new Q8Matrix(rows, cols, q, d);
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long bytes() { return (long) q.length + 2L * d.length; }
    @Override public String format() { return "q8_0"; }

    /** Quant i of row o. */
    int quant(int o, int i) { return q[o * cols + i]; }

    /** The scale of block b of row o. */
    float scale(int o, int b) { return Float.float16ToFloat(d[o * (cols / BLOCK) + b]); }

    /** Row r as d·q per block (exact: each product is one fp32 rounding, as ggml's dequantisation). */
    @Override public void row(int r, float[] dst, int off) {
        if (off < 0 || off + cols > dst.length) throw new IllegalArgumentException("dst has no room for " + cols + " values at " + off);
        widenRow(r, dst, off);
    }

    @Override public void matmul(float[] x, int T, float[] y, Parallel par) {
        if (T < 1) throw new IllegalArgumentException("T must be >= 1: " + T);
        if ((long) T * cols > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + cols);
        if ((long) T * rows > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + rows);
        if (T == 1) par.forRange(rows, GRAIN, (s, e) -> gemv(x, y, s, e));
        else {
            PanelProduct.matmul(rows, cols, this::widenRow, x, T, y, par);
        }
    }

    /** y[o] = row o · x for o in [from, to): the range in four quarters walked side by side (four long streams). */
    private void gemv(float[] x, float[] y, int from, int to) {
        int quarter = (to - from) / 4, rest = from + 4 * quarter;
        for (int o = from; o < from + quarter; o++) dot4(x, y, o, quarter);
        for (int o = rest; o < to; o++) y[o] = dot(o, x, 0);
    }

    /** Rows o, o+h, o+2h, o+3h against x. */
    private void dot4(float[] x, float[] y, int o, int h) {
        int bpr = cols / BLOCK;
        int q0 = o * cols, q1 = q0 + h * cols, q2 = q1 + h * cols, q3 = q2 + h * cols;
        int d0 = o * bpr, d1 = d0 + h * bpr, d2 = d1 + h * bpr, d3 = d2 + h * bpr;
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        for (int b = 0; b < bpr; b++) {
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;   // this block's Σ q·x, per row
            int k = b * BLOCK;
            for (int i = 0; i < BLOCK; i += BS.length()) {
                ByteVector v0 = ByteVector.fromArray(BS, q, q0 + k + i), v1 = ByteVector.fromArray(BS, q, q1 + k + i);
                ByteVector v2 = ByteVector.fromArray(BS, q, q2 + k + i), v3 = ByteVector.fromArray(BS, q, q3 + k + i);
                for (int p = 0; p < PARTS; p++) {
                    FloatVector xv = FloatVector.fromArray(FS, x, k + i + p * VL);
                    a0 = widen(v0, p).fma(xv, a0);
                    a1 = widen(v1, p).fma(xv, a1);
                    a2 = widen(v2, p).fma(xv, a2);
                    a3 = widen(v3, p).fma(xv, a3);
                }
            }
            t0 = a0.fma(FloatVector.broadcast(FS, Float.float16ToFloat(d[d0 + b])), t0);
            t1 = a1.fma(FloatVector.broadcast(FS, Float.float16ToFloat(d[d1 + b])), t1);
            t2 = a2.fma(FloatVector.broadcast(FS, Float.float16ToFloat(d[d2 + b])), t2);
            t3 = a3.fma(FloatVector.broadcast(FS, Float.float16ToFloat(d[d3 + b])), t3);
        }
        y[o] = t0.reduceLanes(VectorOperators.ADD);
        y[o + h] = t1.reduceLanes(VectorOperators.ADD);
        y[o + 2 * h] = t2.reduceLanes(VectorOperators.ADD);
        y[o + 3 * h] = t3.reduceLanes(VectorOperators.ADD);
    }

    /** Part p of a byte vector as VL floats. */
    private static FloatVector widen(ByteVector v, int p) { return (FloatVector) v.convertShape(VectorOperators.B2F, FS, p); }

    /** Row o · x[xOff .. xOff + cols). */
    private float dot(int o, float[] x, int xOff) {
        int bpr = cols / BLOCK, qo = o * cols;
        FloatVector t = FloatVector.zero(FS);
        for (int b = 0; b < bpr; b++) {
            FloatVector a = FloatVector.zero(FS);
            int k = b * BLOCK;
            for (int i = 0; i < BLOCK; i += BS.length()) {
                ByteVector v = ByteVector.fromArray(BS, q, qo + k + i);
                for (int p = 0; p < PARTS; p++) a = widen(v, p).fma(FloatVector.fromArray(FS, x, xOff + k + i + p * VL), a);
            }
            t = a.fma(FloatVector.broadcast(FS, Float.float16ToFloat(d[o * bpr + b])), t);
        }
        return t.reduceLanes(VectorOperators.ADD);
    }

    /** Row o into dst[off ..]: each block's quants widened to fp32 and multiplied by its d. */
    private void widenRow(int o, float[] dst, int off) {
        int bpr = cols / BLOCK, qo = o * cols;
        for (int b = 0; b < bpr; b++) {
            FloatVector s = FloatVector.broadcast(FS, Float.float16ToFloat(d[o * bpr + b]));
            int k = b * BLOCK;
            for (int i = 0; i < BLOCK; i += BS.length()) {
                ByteVector v = ByteVector.fromArray(BS, q, qo + k + i);
                for (int p = 0; p < PARTS; p++) widen(v, p).mul(s).intoArray(dst, off + k + i + p * VL);
            }
        }
    }

    /** The scalar twin: y[t·rows + o] = Σ_b d_b Σ_i q·x, accumulated in fp64 and rounded once. */
    public void matmulScalar(float[] x, int T, float[] y) {
        int bpr = cols / BLOCK;
        for (int o = 0; o < rows; o++)
            for (int t = 0; t < T; t++) {
                double s = 0;
                for (int b = 0; b < bpr; b++) {
                    double blk = 0;
                    for (int i = 0; i < BLOCK; i++) blk += (double) q[o * cols + b * BLOCK + i] * x[t * cols + b * BLOCK + i];
                    s += blk * scale(o, b);
                }
                y[t * rows + o] = (float) s;
            }
    }

    @Override public String toString() { return "Q8Matrix[" + rows + "x" + cols + "]"; }
}
