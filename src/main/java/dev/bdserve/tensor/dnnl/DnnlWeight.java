package dev.bdserve.tensor.dnnl;

import dev.bdserve.tensor.Bf16Pack;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.Q8Matrix;
import dev.bdserve.tensor.Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A weight whose products of {@code minTokens} tokens or more run as oneDNN bf16 matmuls ({@link DnnlContext}); fewer
 * tokens, row lookups and everything else go to the Java weight it wraps. The activations are rounded to bf16
 * (llama.cpp rounds them to bf16 for bf16 weights and to 8-bit blocks for quantized ones); the products accumulate
 * in fp32.
 *
 * <p>A bf16 {@link Matrix} is copied off-heap once, into oneDNN's blocked layout where its columns allow, and multiplied
 * in place (the heap copy stays for the Java path); so is any other weight when a bf16 copy is asked for. Otherwise
 * another format is dequantized to bf16 panel by panel on the rank's threads, each panel then multiplied: a
 * {@link Q8Matrix} tile by tile into oneDNN's own blocked layout (d·q is exact in fp32, so its only rounding is
 * bf16's), the other block formats row by row through {@link Weight#row}.
 */
public final class DnnlWeight implements Weight {
    /** Bytes of a dequantized weight panel: a few panels' worth stays in the caches between dequantizing and multiplying. */
    static final long PANEL_BYTES = 4L << 20;
    /** Bytes of the fp32 results of one native call. */
    static final long DST_BYTES = 16L << 20;

    private final Weight base;
    private final DnnlContext ctx;
    private final int minTokens;
    private final MemorySegment bf16;   // bf16 off-heap copy (blocked or [rows, cols]) of a bf16 Matrix or, asked, of any weight; else null
    private final long panelBytes, dstBytes;

    /**
     * Wraps {@code base}; products of at least {@code minTokens} tokens run natively in {@code ctx}. A bf16 matrix is
     * copied into the context's memory (freed when it closes); another format is dequantized per product.
     */
    public DnnlWeight(Weight base, DnnlContext ctx, int minTokens) { this(base, ctx, minTokens, false, PANEL_BYTES, DST_BYTES); }

    /**
     * As above; with {@code bf16Copy} a quantized or f16 weight is also dequantized once, here, into a bf16 copy in
     * the context's memory (2 bytes per weight beside its own) and multiplied in place as a bf16 matrix is.
     */
    public DnnlWeight(Weight base, DnnlContext ctx, int minTokens, boolean bf16Copy) {
        this(base, ctx, minTokens, bf16Copy, PANEL_BYTES, DST_BYTES);
    }

    /** As above, with the panel and result scratch bounded by the given bytes (small in tests, to run many panels). */
    DnnlWeight(Weight base, DnnlContext ctx, int minTokens, boolean bf16Copy, long panelBytes, long dstBytes) {
        this.panelBytes = panelBytes;
        this.dstBytes = dstBytes;
        if (minTokens < 1) throw new IllegalArgumentException("minTokens must be ≥ 1: " + minTokens);
        if (base instanceof DnnlWeight) throw new IllegalArgumentException("already native: " + base);
        this.base = base;
        this.ctx = ctx;
        this.minTokens = minTokens;
        Matrix bf16Matrix = base instanceof Matrix m && m.dtype() == DType.BF16 ? m : null;
        if (bf16Matrix == null && !bf16Copy) {
            bf16 = null;
            blocked = false;
            return;
        }
        int N = base.rows(), K = base.cols(), tiles = (N + 31) / 32;
        blocked = K % 32 == 0;                 // BA16a32b2a blocks K by 32 (16 pairs): other K would be padded
        if (blocked) {                         // [tiles, K/16, 8, 32, 2]: oneDNN's own layout, read without reordering
            bf16 = ctx.allocate((long) tiles * 32 * K * 2);
            if (base instanceof Q8Matrix q) q.tilesToBf16(0, q.tiles(), bf16);
            else if (bf16Matrix != null)
                for (int t = 0; t < tiles; t++) Bf16Pack.blockedPairs(bf16Matrix.bits(), N, K, t, bf16, (long) t * 32 * K * 2);
            else {                             // 32 rows at a time widened, rounded to bf16, then interleaved
                short[] tile = new short[32 * K];
                float[] row = new float[K];
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment rounded = a.allocate(32L * K * 2);                  // [32, K] bf16
                    for (int t = 0; t < tiles; t++) {
                        int n = Math.min(32, N - 32 * t);
                        Bf16Pack.rows(base, 32 * t, 32 * t + n, rounded, row);
                        MemorySegment.copy(rounded, JAVA_SHORT, 0, tile, 0, n * K);
                        Bf16Pack.blockedPairs(tile, n, K, 0, bf16, (long) t * 32 * K * 2);
                    }
                }
            }
        } else {                               // [rows, cols] row-major
            bf16 = ctx.allocate((long) N * K * 2);
            if (bf16Matrix != null) MemorySegment.copy(bf16Matrix.bits(), 0, bf16, JAVA_SHORT, 0, bf16Matrix.bits().length);
            else Bf16Pack.rows(base, 0, N, bf16, new float[K]);
        }
    }

    private final boolean blocked;   // bf16 holds the matrix in the BA16a32b2a layout (cols a multiple of 32)

    /** Bytes of the bf16 copy this holds beside its base weight (a bf16 matrix's off-heap copy included); 0: none. */
    public long copyBytes() { return bf16 == null ? 0 : bf16.byteSize(); }

    /** The Java weight this wraps. */
    public Weight base() { return base; }

    @Override public int rows() { return base.rows(); }
    @Override public int cols() { return base.cols(); }
    @Override public long bytes() { return base.bytes(); }
    @Override public String format() { return base.format(); }
    @Override public void row(int r, float[] dst, int off) { base.row(r, dst, off); }
    @Override public long parameters() { return base.parameters(); }
    @Override public boolean sameStorage(Weight other) { return other == this || other == base || base.sameStorage(other); }

    @Override public Weight sliceRows(int from, int to) {
        throw new UnsupportedOperationException("a native weight is final: slice its base weight before wrapping");
    }

    @Override public void matmul(float[] x, int T, float[] y, Parallel par) {
        if (T < minTokens) {
            base.matmul(x, T, y, par);
            return;
        }
        int K = cols(), N = rows();
        if ((long) T * K > x.length) throw new IllegalArgumentException("x too short: " + x.length + " < " + T + "x" + K);
        if ((long) T * N > y.length) throw new IllegalArgumentException("y too short: " + y.length + " < " + T + "x" + N);
        int mp = DnnlContext.paddedTokens(T);
        MemorySegment src = ctx.scratch("src", (long) mp * K * 2);                     // [mp, K] bf16
        boolean dequantize = bf16 == null && !(base instanceof Q8Matrix);                // rows in the format's own order
        float[] xs = dequantize ? base.permutedActivations(x, T) : x;                    // [T, K]
        par.forRange(T, 1, (a, b) -> Bf16Pack.floats(xs, a * K, (b - a) * K, src, (long) a * K * 2));
        if (dequantize) dequantized(src, T, mp, y, par);
        else if (bf16 != null) inPlace(src, T, mp, y);
        else tiles((Q8Matrix) base, src, T, mp, y, par);
    }

    /** A bf16 matrix in place, in chunks of whole tiles that bound the results' scratch. */
    private void inPlace(MemorySegment src, int T, int mp, float[] y) {
        int K = cols(), N = rows();
        int chunk = (int) Math.max(32, Math.min((N + 31) / 32 * 32, dstBytes / (4L * mp) / 32 * 32));
        MemorySegment dst = ctx.scratch("dst", 4L * mp * chunk);                        // [mp, chunk] fp32
        for (int r0 = 0; r0 < N; r0 += chunk) {
            int n = Math.min(chunk, N - r0);
            if (blocked) {
                int padded = (n + 31) / 32 * 32;                                          // the last tile's zero rows
                ctx.tiles(src, T, K, bf16.asSlice((long) r0 * K * 2, (long) padded * K * 2), padded, dst, padded);
                copyOut(dst, padded, T, y, N, r0, n);
            } else {
                ctx.rowMajor(src, T, K, bf16.asSlice((long) r0 * K * 2), n, dst, n);
                copyOut(dst, n, T, y, N, r0, n);
            }
        }
    }

    /** Q8_0 tiles dequantized to bf16 panel by panel into oneDNN's blocked layout, each panel multiplied. */
    private void tiles(Q8Matrix q, MemorySegment src, int T, int mp, float[] y, Parallel par) {
        int K = cols(), N = rows(), tileRows = Q8Matrix.tileRows();
        long tileBytes = (long) tileRows * K * 2;
        int perPanel = (int) Math.max(1, Math.min(q.tiles(), Math.min(panelBytes / tileBytes, dstBytes / (4L * mp * tileRows))));
        MemorySegment panel = ctx.scratch("panel", perPanel * tileBytes);               // [perPanel, K/16, 8, 32, 2] bf16
        MemorySegment dst = ctx.scratch("dst", 4L * mp * perPanel * tileRows);          // [mp, perPanel·32] fp32
        for (int t0 = 0; t0 < q.tiles(); t0 += perPanel) {
            int nt = Math.min(perPanel, q.tiles() - t0), from = t0;
            par.forRange(nt, 1, (a, b) -> q.tilesToBf16(from + a, from + b, panel.asSlice(a * tileBytes, (b - a) * tileBytes)));
            ctx.tiles(src, T, K, panel, nt * tileRows, dst, nt * tileRows);
            int r0 = t0 * tileRows;
            copyOut(dst, nt * tileRows, T, y, N, r0, Math.min(nt * tileRows, N - r0));
        }
    }

    /**
     * Any other format: rows widened and packed to bf16 panel by panel, each in its format's own column order
     * ({@link Weight#permutedRow}; src holds x permuted to match), which takes no permuting pass or scratch per row.
     */
    private void dequantized(MemorySegment src, int T, int mp, float[] y, Parallel par) {
        int K = cols(), N = rows();
        long rowBytes = 2L * K;
        int perPanel = (int) Math.max(1, Math.min(N, Math.min(panelBytes / rowBytes, dstBytes / (4L * mp))));
        MemorySegment panel = ctx.scratch("panel", perPanel * rowBytes);                // [perPanel, K] bf16
        MemorySegment dst = ctx.scratch("dst", 4L * mp * perPanel);                     // [mp, perPanel] fp32
        float[] rows = ctx.floats("rows", perPanel * K);                                // [perPanel, K] a chunk's row at its first row's place
        for (int r0 = 0; r0 < N; r0 += perPanel) {
            int n = Math.min(perPanel, N - r0), from = r0;
            par.forRange(n, 8, (a, b) -> Bf16Pack.rows(base, from + a, from + b, panel.asSlice(a * rowBytes, (b - a) * rowBytes), rows, a * K, true));
            ctx.rowMajor(src, T, K, panel, n, dst, n);
            copyOut(dst, n, T, y, N, r0, n);
        }
    }

    /** y[t, r0 .. r0 + n) = dst[t, 0 .. n) for t &lt; T (dst rows {@code ld} floats apart, y rows N). */
    private static void copyOut(MemorySegment dst, int ld, int T, float[] y, int N, int r0, int n) {
        for (int t = 0; t < T; t++) MemorySegment.copy(dst, JAVA_FLOAT, 4L * t * ld, y, t * N + r0, n);
    }

    @Override public String toString() { return "DnnlWeight[" + base + "]"; }
}
