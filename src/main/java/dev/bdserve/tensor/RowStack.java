package dev.bdserve.tensor;

import java.util.Arrays;

/**
 * Weights of different formats with equal columns, their rows one after another, each part kept in its own format
 * (a fused q/k/v projection whose v rows a quantization recipe stored in a wider type than q and k). A product runs
 * each part's own kernels and places its rows.
 */
public final class RowStack implements Weight {
    private final Weight[] parts;
    private final int[] firstRow;    // [parts + 1] row where each part starts; the last entry is rows
    private final int cols;

    public RowStack(Weight... parts) {
        if (parts.length == 0) throw new IllegalArgumentException("a row stack needs at least one part");
        this.parts = parts.clone();
        this.cols = parts[0].cols();
        this.firstRow = new int[parts.length + 1];
        for (int i = 0; i < parts.length; i++) {
            if (parts[i].cols() != cols) throw new IllegalArgumentException("cannot stack weights of " + cols + " and " + parts[i].cols() + " columns");
            firstRow[i + 1] = Math.addExact(firstRow[i], parts[i].rows());
        }
    }

    @Override public int rows() { return firstRow[parts.length]; }
    @Override public int cols() { return cols; }
    @Override public long bytes() { return Arrays.stream(parts).mapToLong(Weight::bytes).sum(); }

    /** The parts' formats joined with '+', e.g. "q4_k+q6_k". */
    @Override public String format() { return String.join("+", Arrays.stream(parts).map(Weight::format).distinct().toList()); }

    @Override public void matmul(float[] x, int T, float[] y, Parallel par) {
        int rows = rows();
        if (T < 1) throw new IllegalArgumentException("T must be >= 1: " + T);
        if ((long) T * rows > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + rows);
        for (int i = 0; i < parts.length; i++) {
            int n = parts[i].rows();
            float[] out = new float[T * n];                  // [T, n] this part's products
            parts[i].matmul(x, T, out, par);
            for (int t = 0; t < T; t++) System.arraycopy(out, t * n, y, t * rows + firstRow[i], n);
        }
    }

    @Override public void row(int r, float[] dst, int off) {
        int i = part(r);
        parts[i].row(r - firstRow[i], dst, off);
    }

    /** The part holding row r. */
    private int part(int r) {
        if (r < 0 || r >= rows()) throw new IllegalArgumentException("row " + r + " outside " + rows());
        int i = Arrays.binarySearch(firstRow, r);
        return i >= 0 ? i : -i - 2;
    }

    @Override public Weight sliceRows(int from, int to) {
        if (from < 0 || to > rows() || from >= to) throw new IllegalArgumentException("rows [" + from + ", " + to + ") outside " + rows());
        java.util.List<Weight> kept = new java.util.ArrayList<>();
        for (int i = 0; i < parts.length; i++) {
            int s = Math.max(from, firstRow[i]), e = Math.min(to, firstRow[i + 1]);
            if (s < e) kept.add(parts[i].sliceRows(s - firstRow[i], e - firstRow[i]));
        }
        return Weight.concatRows(kept.toArray(Weight[]::new));
    }

    @Override public String toString() { return "RowStack" + Arrays.toString(parts); }
}
