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

    /**
     * Row r widened to fp32 with its columns in the order of {@link #permutedActivations}: the order the storage
     * decodes in without a permuting pass, for callers that widen whole matrices (natural order by default).
     */
    default void permutedRow(int r, float[] dst, int off) { row(r, dst, off); }

    /** x [T, cols] with each row's columns in the order of {@link #permutedRow} (x itself by default). */
    default float[] permutedActivations(float[] x, int T) { return x; }

    /** Multiply-adds of one token's product: rows × cols. */
    default long parameters() { return (long) rows() * cols(); }

    /** Whether this weight reads the same stored values as {@code other} (a wrapper and what it wraps). */
    default boolean sameStorage(Weight other) { return this == other; }

    /** Rows [from, to) as a weight of the same format. */
    Weight sliceRows(int from, int to);

    /**
     * These rows followed by those of {@code more}, in this weight's own format, or null when the parts do not all
     * share it (then {@link #concatRows} stacks them as they are).
     */
    default Weight joinRows(Weight... more) { return null; }

    /**
     * The rows of several weights one after another (fused projections): one weight of their format when all share
     * it, else a {@link RowStack} keeping each part in its own (a Q4_K_M file mixes Q4_K and Q6_K in q/k/v).
     */
    static Weight concatRows(Weight... parts) {
        if (parts.length == 0) throw new IllegalArgumentException("no weights to stack");
        int cols = parts[0].cols();
        for (Weight p : parts)
            if (p.cols() != cols) throw new IllegalArgumentException("cannot stack weights of " + cols + " and " + p.cols() + " columns");
        if (parts.length == 1) return parts[0];
        Weight joined = parts[0].joinRows(java.util.Arrays.copyOfRange(parts, 1, parts.length));
        return joined != null ? joined : new RowStack(parts);
    }
}
