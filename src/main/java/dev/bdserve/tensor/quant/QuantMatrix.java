package dev.bdserve.tensor.quant;

import dev.bdserve.tensor.PanelProduct;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.Weight;

/**
 * A weight [rows, cols] kept in one of ggml's block formats ({@link BlockFormat}), each row the bytes of its blocks as
 * a GGUF file holds them, regrouped within the row where the format's GEMV reads them faster ({@link
 * BlockFormat#pack}). One token's product runs the format's GEMV on the stored bytes; several tokens' products decode
 * panels of rows to fp32 once and use the dense kernels ({@link PanelProduct}). Activations stay fp32, except in the
 * one-token products of Q4_K and Q6_K, whose integer GEMVs round them to int8 per group as llama.cpp's Q8_K does
 * (at most max|x|/254 per value; {@link BlockFormat}).
 *
 * <p>Rows longer than {@value #LONG_ROW} weights (a down projection's) are kept as column strips of at most {@value
 * #STRIP} weights ({@link #stripCols}): strip s holds columns [s·w, (s + 1)·w) of every row, its rows one after
 * another, and the strips follow one another. A GEMV then walks each strip as a matrix of short rows, whose slice of
 * x stays in L1 beside the streamed weights, and adds the strips' partial products; over whole rows of 8192 the
 * same bytes streamed 1.5x slower (docs/bench/kernels.md).
 */
public final class QuantMatrix implements Weight {
    /** Rows longer than this (in weights) are kept as column strips. */
    static final int LONG_ROW = 4096;
    /** The widest strip; strips are as wide as possible up to this, and no narrower than {@value #MIN_STRIP}. */
    static final int STRIP = 2048, MIN_STRIP = 1024;

    private final BlockFormat format;
    private final int rows, cols;
    private final int stripCols, strips, stripBlocks; // strip width, strips per row, blocks per row of a strip
    private final byte[] data;                         // [strips][rows][stripBlocks · blockBytes], packed rows

    /** A weight from its blocks as a GGUF file stores them, row after row (taken as they are, or packed into a copy). */
    public QuantMatrix(BlockFormat format, int rows, int cols, byte[] data) {
        this(format, rows, cols, data, stripCols(cols, format.blockSize()));
    }

    /** As {@link #QuantMatrix(BlockFormat, int, int, byte[])}, with strips {@code stripCols} wide (cols: none). */
    QuantMatrix(BlockFormat format, int rows, int cols, byte[] data, int stripCols) {
        this(format, rows, cols, stripCols, packed(format, rows, cols, data, stripCols));
    }

    private QuantMatrix(BlockFormat format, int rows, int cols, int stripCols, byte[] packed) {
        this.format = format;
        this.rows = rows;
        this.cols = cols;
        this.stripCols = stripCols;
        this.strips = cols / stripCols;
        this.stripBlocks = stripCols / format.blockSize();
        this.data = packed;
    }

    /** The file's row-major blocks checked against the shape, regrouped into strips and packed. */
    private static byte[] packed(BlockFormat format, int rows, int cols, byte[] data, int stripCols) {
        if (rows <= 0 || cols <= 0 || cols % format.blockSize() != 0)
            throw new IllegalArgumentException("a " + format + " weight needs positive rows and a multiple of " + format.blockSize()
                    + " columns, got " + rows + "x" + cols);
        if (stripCols <= 0 || stripCols % format.blockSize() != 0 || cols % stripCols != 0)
            throw new IllegalArgumentException("strips of " + stripCols + " columns do not divide " + cols + " into " + format + " blocks");
        int blocks = cols / format.blockSize();
        if (data.length != (long) rows * blocks * format.blockBytes())
            throw new IllegalArgumentException(format + " storage of " + rows + "x" + cols + " needs " + (long) rows * blocks * format.blockBytes()
                    + " bytes, got " + data.length);
        int strips = cols / stripCols, stripBlocks = blocks / strips;
        if (strips == 1) return format.pack(data, rows, blocks);
        int rowBytes = blocks * format.blockBytes(), stripRowBytes = stripBlocks * format.blockBytes();
        byte[] regrouped = new byte[data.length];                // strip s, row r at (s·rows + r)·stripRowBytes
        for (int s = 0; s < strips; s++)
            for (int r = 0; r < rows; r++)
                System.arraycopy(data, r * rowBytes + s * stripRowBytes, regrouped, (s * rows + r) * stripRowBytes, stripRowBytes);
        return format.pack(regrouped, strips * rows, stripBlocks);
    }

    /**
     * The strip width for rows of {@code cols} weights in blocks of {@code blockSize}: cols itself up to {@value
     * #LONG_ROW}; beyond, the widest whole number of blocks from {@value #MIN_STRIP} to {@value #STRIP} that divides
     * the row, or cols again when none does.
     */
    static int stripCols(int cols, int blockSize) {
        if (cols <= LONG_ROW || cols % blockSize != 0) return cols;
        for (int w = STRIP / blockSize * blockSize; w >= MIN_STRIP; w -= blockSize)
            if (cols % w == 0) return w;
        return cols;
    }

    public BlockFormat blockFormat() { return format; }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long bytes() { return data.length; }
    @Override public String format() { return format.name(); }

    /** Bytes of one row of one strip. */
    private int stripRowBytes() { return stripBlocks * format.blockBytes(); }

    /** Where row r's part in strip s begins. */
    private int at(int s, int r) { return (s * rows + r) * stripRowBytes(); }

    @Override public void matmul(float[] x, int T, float[] y, Parallel par) {
        if (T < 1) throw new IllegalArgumentException("T must be >= 1: " + T);
        if ((long) T * cols > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + cols);
        if ((long) T * rows > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + rows);
        if (T > 1) {
            PanelProduct.matmul(rows, cols, this::decodePanel, panelActivations(x, T), T, y, par);
            return;
        }
        Activations xa = format.gemvActivations(x, cols);
        if (strips == 1) {
            par.forRange(rows, PanelProduct.GRAIN, (s, e) -> format.gemv(data, stripBlocks, xa, y, s, e));
            return;
        }
        // the strips as one matrix of strips·rows short rows, each against its own slice of x: part[s·rows + r]
        Activations[] xs = new Activations[strips];
        for (int s = 0; s < strips; s++) xs[s] = xa.slice(s * stripCols, (s + 1) * stripCols);          // [stripCols]
        float[] part = new float[strips * rows];                                         // [strips, rows]
        par.forRange(strips * rows, PanelProduct.GRAIN, (from, to) -> {
            for (int s = from / rows; s * rows < to; s++)
                format.gemv(data, stripBlocks, xs[s], part, Math.max(from, s * rows), Math.min(to, (s + 1) * rows));
        });
        System.arraycopy(part, 0, y, 0, rows);
        for (int s = 1; s < strips; s++)
            for (int r = 0; r < rows; r++) y[r] += part[s * rows + r];
    }

    /** Σ x[32j .. 32j + 32) for each of the cols / 32 groups. */
    static float[] groupSums(float[] x, int cols) {
        float[] s = new float[cols / BlockFormat.SUM_GROUP];     // [cols / 32]
        for (int j = 0; j < s.length; j++) {
            float a = 0;
            for (int i = 0; i < BlockFormat.SUM_GROUP; i++) a += x[j * BlockFormat.SUM_GROUP + i];
            s[j] = a;
        }
        return s;
    }

    /**
     * The T tokens' activations in the order {@link BlockFormat#decodePanel} gives the weights in: one pass over all
     * T rows, since a format permutes x within runs that divide its block, and so a row.
     */
    private float[] panelActivations(float[] x, int T) { return format.activations(x, T * cols); }

    /** Row r in the order of {@link #panelActivations}: each strip's part in turn (a format permutes within blocks). */
    private void decodePanel(int r, float[] dst, int off) {
        for (int s = 0; s < strips; s++) format.decodePanel(data, at(s, r), dst, off + s * stripCols, stripBlocks);
    }

    private void decodeRow(int r, float[] dst, int off) {
        for (int s = 0; s < strips; s++) format.decodePacked(data, at(s, r), dst, off + s * stripCols, stripBlocks);
    }

    @Override public void row(int r, float[] dst, int off) {
        checkRow(r, dst, off);
        decodeRow(r, dst, off);
    }

    /** Row r in the packed order of {@link BlockFormat#decodePanel}: no permuting pass, no scratch. */
    @Override public void permutedRow(int r, float[] dst, int off) {
        checkRow(r, dst, off);
        decodePanel(r, dst, off);
    }

    private void checkRow(int r, float[] dst, int off) {
        if (r < 0 || r >= rows) throw new IllegalArgumentException("row " + r + " outside " + rows);
        if (off < 0 || off + cols > dst.length) throw new IllegalArgumentException("dst has no room for " + cols + " values at " + off);
    }

    @Override public float[] permutedActivations(float[] x, int T) {
        if ((long) T * cols > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + cols);
        return panelActivations(x, T);
    }

    @Override public QuantMatrix sliceRows(int from, int to) {
        if (from < 0 || to > rows || from >= to) throw new IllegalArgumentException("rows [" + from + ", " + to + ") outside " + rows);
        int n = to - from, bytes = stripRowBytes();
        byte[] out = new byte[n * strips * bytes];
        for (int s = 0; s < strips; s++) System.arraycopy(data, at(s, from), out, s * n * bytes, n * bytes);
        return new QuantMatrix(format, n, cols, stripCols, out);
    }

    @Override public Weight joinRows(Weight... more) {
        int total = rows;
        for (Weight m : more) {
            if (!(m instanceof QuantMatrix q) || q.format != format || q.cols != cols || q.stripCols != stripCols) return null;
            total = Math.addExact(total, q.rows);
        }
        QuantMatrix[] parts = new QuantMatrix[more.length + 1];
        parts[0] = this;
        for (int i = 0; i < more.length; i++) parts[i + 1] = (QuantMatrix) more[i];
        int bytes = stripRowBytes();
        byte[] all = new byte[Math.multiplyExact(Math.multiplyExact(total, strips), bytes)];
        int at = 0;
        for (int s = 0; s < strips; s++)                                  // strip by strip, each part's rows in turn
            for (QuantMatrix q : parts) {
                System.arraycopy(q.data, q.at(s, 0), all, at, q.rows * bytes);
                at += q.rows * bytes;
            }
        return new QuantMatrix(format, total, cols, stripCols, all);
    }

    @Override public String toString() {
        return "QuantMatrix[" + rows + "x" + cols + " " + format + (strips > 1 ? ", " + strips + " strips" : "") + "]";
    }
}
