package dev.bdserve.tensor;

import java.util.Objects;

/**
 * A row-major weight matrix [rows, cols] in HF layout ([out_features, in_features]), stored in a heap
 * array: {@code float[]} for F32, the raw 16-bit patterns in {@code short[]} for BF16 and F16.
 * Heap arrays hold hot weights because vector loads from them were faster than from MemorySegments
 * (docs/bench/kernels.md). Immutable after construction.
 */
public final class Matrix implements Weight {
    private final DType dtype;
    private final int rows;
    private final int cols;
    private final float[] f32;   // [rows * cols] when dtype == F32, else null
    private final short[] bits;  // [rows * cols] BF16/F16 bit patterns, else null

    private Matrix(DType dtype, int rows, int cols, float[] f32, short[] bits) {
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("matrix shape must be positive: " + rows + "x" + cols);
        long n = (long) rows * cols;
        if (n > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("matrix too large for one array: " + rows + "x" + cols);
        this.dtype = Objects.requireNonNull(dtype);
        this.rows = rows;
        this.cols = cols;
        this.f32 = f32;
        this.bits = bits;
        if (dtype == DType.F32 ? (f32 == null || f32.length != n) : (bits == null || bits.length != n))
            throw new IllegalArgumentException("storage length does not match " + rows + "x" + cols + " " + dtype);
    }

    public static Matrix ofF32(int rows, int cols, float[] data) { return new Matrix(DType.F32, rows, cols, data, null); }

    public static Matrix ofBits(DType dtype, int rows, int cols, short[] data) {
        if (dtype == DType.F32) throw new IllegalArgumentException("ofBits takes BF16 or F16");
        return new Matrix(dtype, rows, cols, null, data);
    }

    /** Converts fp32 values to the given dtype (round-to-nearest-even for BF16/F16). */
    public static Matrix fromFloats(DType dtype, int rows, int cols, float[] data) {
        if (dtype == DType.F32) return ofF32(rows, cols, data.clone());
        short[] b = new short[data.length];
        for (int i = 0; i < data.length; i++) b[i] = dtype == DType.BF16 ? Numerics.floatToBf16(data[i]) : Float.floatToFloat16(data[i]);
        return ofBits(dtype, rows, cols, b);
    }

    public DType dtype() { return dtype; }
    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public String format() { return dtype.name().toLowerCase(java.util.Locale.ROOT); }
    @Override public void matmul(float[] x, int T, float[] y, Parallel par) { MatMul.matmul(this, x, T, y, par); }
    /** fp32 storage (F32 only). */
    public float[] f32() { return f32; }
    /** 16-bit storage (BF16/F16 only). */
    public short[] bits() { return bits; }
    /** Bytes of weight data (what a kernel streams per full pass). */
    @Override public long bytes() { return (long) rows * cols * dtype.bytes(); }

    /** Element (r, c) widened to fp32. Slow: for references and tests. */
    public float get(int r, int c) {
        int i = r * cols + c;
        return switch (dtype) {
            case F32 -> f32[i];
            case BF16 -> Numerics.bf16ToFloat(bits[i]);
            case F16 -> Float.float16ToFloat(bits[i]);
        };
    }

    /** Row r widened to fp32 into dst[off .. off+cols). */
    @Override public void row(int r, float[] dst, int off) {
        int base = r * cols;
        switch (dtype) {
            case F32 -> System.arraycopy(f32, base, dst, off, cols);
            case BF16 -> { for (int c = 0; c < cols; c++) dst[off + c] = Numerics.bf16ToFloat(bits[base + c]); }
            case F16 -> { for (int c = 0; c < cols; c++) dst[off + c] = Float.float16ToFloat(bits[base + c]); }
        }
    }

    /** All elements widened to fp32 (row-major). */
    public float[] toFloats() {
        float[] out = new float[rows * cols];
        for (int r = 0; r < rows; r++) row(r, out, r * cols);
        return out;
    }

    /** Rows [from, to) as a new matrix (a copy), e.g. a column-parallel shard in HF layout. */
    @Override public Matrix sliceRows(int from, int to) {
        if (from < 0 || to > rows || from >= to) throw new IllegalArgumentException("bad row slice " + from + ".." + to + " of " + rows);
        int n = (to - from) * cols;
        return dtype == DType.F32
                ? ofF32(to - from, cols, java.util.Arrays.copyOfRange(f32, from * cols, from * cols + n))
                : ofBits(dtype, to - from, cols, java.util.Arrays.copyOfRange(bits, from * cols, from * cols + n));
    }

    /** Columns [from, to) as a new matrix (a copy), e.g. a row-parallel shard in HF layout. */
    public Matrix sliceCols(int from, int to) {
        if (from < 0 || to > cols || from >= to) throw new IllegalArgumentException("bad column slice " + from + ".." + to + " of " + cols);
        int w = to - from;
        if (dtype == DType.F32) {
            float[] out = new float[rows * w];
            for (int r = 0; r < rows; r++) System.arraycopy(f32, r * cols + from, out, r * w, w);
            return ofF32(rows, w, out);
        }
        short[] out = new short[rows * w];
        for (int r = 0; r < rows; r++) System.arraycopy(bits, r * cols + from, out, r * w, w);
        return ofBits(dtype, rows, w, out);
    }

    /** The transpose [cols, rows], in the same dtype (exact). */
    public Matrix transpose() {
        if (dtype == DType.F32) {
            float[] out = new float[rows * cols];
            for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[c * rows + r] = f32[r * cols + c];
            return ofF32(cols, rows, out);
        }
        short[] out = new short[rows * cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[c * rows + r] = bits[r * cols + c];
        return ofBits(dtype, cols, rows, out);
    }

    /** Stacks matrices with equal cols and dtype along rows (e.g. fused q/k/v or gate/up). */
    @Override public Weight joinRows(Weight... more) {
        Matrix[] all = new Matrix[more.length + 1];
        all[0] = this;
        for (int i = 0; i < more.length; i++) {
            if (!(more[i] instanceof Matrix m) || m.dtype != dtype) return null;
            all[i + 1] = m;
        }
        return concatRows(all);
    }

    public static Matrix concatRows(Matrix... parts) {
        int cols = parts[0].cols;
        DType dt = parts[0].dtype;
        int rows = 0;
        for (Matrix m : parts) {
            if (m.cols != cols || m.dtype != dt) throw new IllegalArgumentException("concatRows needs equal cols and dtype");
            rows += m.rows;
        }
        int pos = 0;
        if (dt == DType.F32) {
            float[] out = new float[rows * cols];
            for (Matrix m : parts) { System.arraycopy(m.f32, 0, out, pos, m.f32.length); pos += m.f32.length; }
            return ofF32(rows, cols, out);
        }
        short[] out = new short[rows * cols];
        for (Matrix m : parts) { System.arraycopy(m.bits, 0, out, pos, m.bits.length); pos += m.bits.length; }
        return ofBits(dt, rows, cols, out);
    }

    @Override public String toString() { return "Matrix[" + rows + "x" + cols + " " + dtype + "]"; }
}
