package dev.bdserve.tensor;

/**
 * A weight matrix [rows, cols] in HF layout ([out_features, in_features]) as the forward pass uses it: products with
 * activations and row lookups, whatever the storage. A dense {@link Matrix} (F32, BF16, F16) is one; a quantized
 * matrix with its own kernels is another, behind the same calls.
 */
public interface Weight {
    int rows();

    int cols();

    /** Bytes one full pass over the weight reads. */
    long bytes();

    /** The storage, as users name it: "f32", "bf16", "f16", "q8_0", ... */
    String format();

    /** y[t, :] = W·x[t, :] for t &lt; T: x [T, cols], y [T, rows] (written, not accumulated). */
    void matmul(float[] x, int T, float[] y, Parallel par);

    /** Row r widened to fp32 into dst[off .. off + cols) (an embedding lookup). */
    void row(int r, float[] dst, int off);

    /** Multiply-adds of one token's product: rows × cols. */
    default long parameters() { return (long) rows() * cols(); }

    /** Rows [from, to) as a weight of the same format. */
    Weight sliceRows(int from, int to);

    /**
     * The rows of several weights one after another (fused projections): in their format when all share it, else
     * widened to a dense fp32 {@link Matrix}.
     */
    static Weight concatRows(Weight... parts) {
        if (java.util.Arrays.stream(parts).allMatch(p -> p instanceof Matrix m && m.dtype() == ((Matrix) parts[0]).dtype()))
            return Matrix.concatRows(java.util.Arrays.stream(parts).map(p -> (Matrix) p).toArray(Matrix[]::new));
        if (java.util.Arrays.stream(parts).allMatch(p -> p instanceof Q8Matrix))
            return Q8Matrix.concatRows(java.util.Arrays.stream(parts).map(p -> (Q8Matrix) p).toArray(Q8Matrix[]::new));
        int cols = parts[0].cols(), rows = 0;
        for (Weight p : parts) {
            if (p.cols() != cols) throw new IllegalArgumentException("cannot stack weights of " + cols + " and " + p.cols() + " columns");
            rows += p.rows();
        }
        float[] f = new float[Math.multiplyExact(rows, cols)];
        int r = 0;
        for (Weight p : parts) for (int i = 0; i < p.rows(); i++, r++) p.row(i, f, r * cols);
        return Matrix.ofF32(rows, cols, f);
    }
}
