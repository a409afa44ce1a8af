package dev.bdserve.tensor.quant;

import dev.bdserve.tensor.PanelProduct;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.Weight;

import java.util.Arrays;

/**
 * A weight [rows, cols] kept in one of ggml's block formats ({@link BlockFormat}), its rows stored one after
 * another, each the bytes of its blocks as a GGUF file holds them, regrouped within the row where the format's GEMV
 * reads them faster ({@link BlockFormat#pack}). One token's product runs the format's GEMV on
 * the stored bytes; several tokens' products decode panels of rows to fp32 once and use the dense kernels
 * ({@link PanelProduct}). Activations stay fp32 throughout.
 */
public final class QuantMatrix implements Weight {
    private final BlockFormat format;
    private final int rows, cols, blocks;   // blocks per row
    private final byte[] data;              // [rows · blocks · blockBytes] the blocks, row-major, packed

    /** A weight from its blocks as a GGUF file stores them (taken as they are, or packed into a copy). */
    public QuantMatrix(BlockFormat format, int rows, int cols, byte[] data) {
        this(format, rows, cols, data, false);
    }

    private QuantMatrix(BlockFormat format, int rows, int cols, byte[] data, boolean packed) {
        if (rows <= 0 || cols <= 0 || cols % format.blockSize() != 0)
            throw new IllegalArgumentException("a " + format + " weight needs positive rows and a multiple of " + format.blockSize()
                    + " columns, got " + rows + "x" + cols);
        this.format = format;
        this.rows = rows;
        this.cols = cols;
        this.blocks = cols / format.blockSize();
        if (data.length != (long) rows * blocks * format.blockBytes())
            throw new IllegalArgumentException(format + " storage of " + rows + "x" + cols + " needs " + (long) rows * blocks * format.blockBytes()
                    + " bytes, got " + data.length);
        this.data = packed ? data : format.pack(data, rows, blocks);
    }

    public BlockFormat blockFormat() { return format; }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long bytes() { return data.length; }
    @Override public String format() { return format.name(); }

    private int rowBytes() { return blocks * format.blockBytes(); }

    @Override public void matmul(float[] x, int T, float[] y, Parallel par) {
        if (T < 1) throw new IllegalArgumentException("T must be >= 1: " + T);
        if ((long) T * cols > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + cols);
        if ((long) T * rows > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + rows);
        if (T > 1) {
            PanelProduct.matmul(rows, cols, this::decodePanel, panelActivations(x, T), T, y, par);
            return;
        }
        float[] sums = format.usesSums() ? groupSums(x, cols) : null, xa = format.activations(x, cols);
        par.forRange(rows, PanelProduct.GRAIN, (s, e) -> format.gemv(data, blocks, xa, sums, y, s, e));
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

    private void decodePanel(int r, float[] dst, int off) { format.decodePanel(data, r * rowBytes(), dst, off, blocks); }

    private void decodeRow(int r, float[] dst, int off) { format.decodePacked(data, r * rowBytes(), dst, off, blocks); }

    @Override public void row(int r, float[] dst, int off) {
        if (r < 0 || r >= rows) throw new IllegalArgumentException("row " + r + " outside " + rows);
        if (off < 0 || off + cols > dst.length) throw new IllegalArgumentException("dst has no room for " + cols + " values at " + off);
        decodeRow(r, dst, off);
    }

    @Override public QuantMatrix sliceRows(int from, int to) {
        if (from < 0 || to > rows || from >= to) throw new IllegalArgumentException("rows [" + from + ", " + to + ") outside " + rows);
        return new QuantMatrix(format, to - from, cols, Arrays.copyOfRange(data, from * rowBytes(), to * rowBytes()), true);
    }

    @Override public Weight joinRows(Weight... more) {
        int total = rows;
        for (Weight m : more) {
            if (!(m instanceof QuantMatrix q) || q.format != format || q.cols != cols) return null;
            total = Math.addExact(total, q.rows);
        }
        byte[] all = Arrays.copyOf(data, Math.multiplyExact(total, rowBytes()));
        int at = data.length;
        for (Weight m : more) {
            byte[] d = ((QuantMatrix) m).data;
            System.arraycopy(d, 0, all, at, d.length);
            at += d.length;
        }
        return new QuantMatrix(format, total, cols, all, true);
    }

    @Override public String toString() { return "QuantMatrix[" + rows + "x" + cols + " " + format + "]"; }
}
