package dev.bdserve.tensor.quant;

import java.util.Arrays;

/**
 * One token's activations as a format's GEMV takes them ({@link BlockFormat#gemvActivations}): fp32 values in the
 * format's order, or integers with one scale per group of {@code group} values (Q4_K, Q6_K), and the sums of each
 * {@value BlockFormat#SUM_GROUP} values where the format needs them. Unused parts are null.
 *
 * @param x      fp32 activations [n], in the order the format's packed rows keep their weights
 * @param sums   Σ of each run of {@value BlockFormat#SUM_GROUP} activations (as the GEMV sees them) [n / 32]
 * @param q      integer activations [n], in the integer kernel's order
 * @param scales the value of one step of q, per group [n / group]
 * @param group  activations per scale (0 when q is null)
 */
record Activations(float[] x, float[] sums, short[] q, float[] scales, int group) {
    /** Columns [from, to) of the token, whole groups, as a GEMV over a strip of the row takes them. */
    Activations slice(int from, int to) {
        if (group > 0 && (from % group != 0 || to % group != 0))
            throw new IllegalArgumentException("columns [" + from + ", " + to + ") split a group of " + group);
        return new Activations(x == null ? null : Arrays.copyOfRange(x, from, to),
                sums == null ? null : Arrays.copyOfRange(sums, from / BlockFormat.SUM_GROUP, to / BlockFormat.SUM_GROUP),
                q == null ? null : Arrays.copyOfRange(q, from, to),
                scales == null ? null : Arrays.copyOfRange(scales, from / group, to / group), group);
    }
}
