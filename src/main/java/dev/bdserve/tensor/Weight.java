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
}
