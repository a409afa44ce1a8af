package dev.bdserve.lora;

import dev.bdserve.lora.LoraLayout.BlockShrink;
import dev.bdserve.lora.LoraLayout.DenseShrink;
import dev.bdserve.lora.PreparedAdapter.Exchange;
import dev.bdserve.model.ProjectionGroup;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.Communicator;
import dev.bdserve.tensor.MatMul;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Parallel;

import java.util.List;

/**
 * Grouped LoRA compute (SGMV-style, as in Punica / S-LoRA) for one module group of one layer on one rank:
 * <ol>
 *   <li>shrink: each adapter's tokens run as one segment, s = x·Aᵀ over all its tokens at once (one pass over A);</li>
 *   <li>exchange: under S-LoRA, one collective for all segments that need it (all-gather after a column
 *       shrink, all-reduce after a row shrink), covering only those segments' tokens;</li>
 *   <li>expand: y += s·(sB)ᵀ per member module, block by block where B is block-diagonal.</li>
 * </ol>
 * With several segments, threads take whole segments; with one, the products themselves are split. Buffers come from
 * the caller's {@link LoraWorkspace}.
 */
public final class LoraCompute {
    private LoraCompute() {}

    /**
     * y[t, :] += LoRA_group(x[t, :]) for every token t of the batch's segments.
     *
     * @param x [T, xWidth] the group's input on this rank
     * @param y [T, yWidth] the group's output on this rank (fused members side by side, as in the base projection)
     */
    public static void apply(int layer, ProjectionGroup g, LoraBatch batch, float[] x, int xWidth, float[] y, int yWidth,
                             Parallel par, Communicator comm, LoraWorkspace ws) {
        if (batch.isEmpty()) return;
        long t0 = System.nanoTime();
        List<LoraBatch.Segment> segs = ws.active;
        segs.clear();
        for (LoraBatch.Segment s : batch.segments()) if (s.adapter().work(layer, g) != null) segs.add(s);
        if (segs.isEmpty()) return;
        int nseg = segs.size();
        for (LoraBatch.Segment sg : segs) if (sg.tokens().length > 1) warm(sg.adapter().work(layer, g));
        for (int i = 0; i < nseg; i++) ws.segment(i);        // grown here, on one thread, before the segments run
        forSegments(nseg, par, (i, p) -> shrink(segs.get(i), layer, g, x, xWidth, p, ws.segment(i), ws.stats));
        exchange(segs, layer, g, ws, comm);
        forSegments(nseg, par, (i, p) -> expand(segs.get(i), layer, g, ws.segment(i), y, yWidth, comm.size()));
        ws.stats.addNanos(System.nanoTime() - t0);
    }

    /** Keeps the warming loads live (written only when their XOR hits one value). */
    static int sink;

    /**
     * Reads one element per cache line of every matrix the group's LoRA will use, before using them. Between
     * steps the base weights stream through the caches and evict the adapters, so each small shrink or expand
     * would otherwise start with a run of dependent-looking misses; independent loads in one tight loop overlap
     * far more of them. Measured (llama-160m, TP 2 threads, batch 4, BD-LoRA rank 24, 3 interleaved runs, two
     * pairs): 1.57 / 1.56 ms of LoRA per step without, 1.43 / 1.41 ms with, the loop's own time included.
     * Segments of one token skip it: their GEMV shrink streams A in four long runs the prefetchers follow, and the extra
     * pass only adds its own time. Measured on the 48 groups of that adapter on rank 0 of 2, fully compiled, the
     * variants alternated in one JVM, 1.6 MB streamed between groups: one token 0.81–0.83 ms per step with the pass,
     * 0.59–0.61 without; 4 tokens 2.35 with, 2.45 without; 8 tokens 1.72–1.91 either way.
     */
    private static void warm(PreparedAdapter.GroupWork w) {
        int t = switch (w.shrink()) {
            case DenseShrink d -> touch(d.a());
            case BlockShrink b -> { int u = 0; for (Matrix m : b.blocks()) u ^= touch(m); yield u; }
        };
        for (PreparedAdapter.Expand e : w.expands()) for (Matrix m : e.blocks()) t ^= touch(m);
        if (t == 0x7ead_beef) sink = t;
    }

    private static int touch(Matrix m) {
        int t = 0;
        if (m.dtype() == dev.bdserve.tensor.DType.F32) {
            float[] a = m.f32();
            for (int i = 0; i < a.length; i += 16) t ^= Float.floatToRawIntBits(a[i]);
        } else {
            short[] b = m.bits();
            for (int i = 0; i < b.length; i += 32) t ^= b[i];
        }
        return t;
    }

    @FunctionalInterface
    private interface SegmentBody { void run(int segment, Parallel par); }

    private static void forSegments(int n, Parallel par, SegmentBody body) {
        if (n >= 2 && par.parallelism() > 1) {
            Parallel serial = Parallel.serial();
            par.forRange(n, 1, (from, to) -> { for (int i = from; i < to; i++) body.run(i, serial); });
        } else for (int i = 0; i < n; i++) body.run(i, par);
    }

    /** s = x·Aᵀ for the segment's tokens: [n, sWidth] into the segment's {@code s}. */
    private static void shrink(LoraBatch.Segment seg, int layer, ProjectionGroup g, float[] x, int xWidth, Parallel par,
                               LoraWorkspace.Segment ws, LoraStats stats) {
        PreparedAdapter.GroupWork w = seg.adapter().work(layer, g);
        int[] tokens = seg.tokens();
        int n = tokens.length;
        float[] xs = x;                                       // [n, xWidth] the segment's inputs, contiguous
        if (!seg.leading()) {
            xs = ws.xs = LoraWorkspace.Segment.atLeast(ws.xs, n * xWidth);
            for (int i = 0; i < n; i++) System.arraycopy(x, tokens[i] * xWidth, xs, i * xWidth, xWidth);
        }
        float[] s = ws.s = LoraWorkspace.Segment.atLeast(ws.s, n * w.sWidth());
        ws.shrunk = s;
        switch (w.shrink()) {
            case DenseShrink d -> MatMul.matmul(d.a(), xs, n, s, par);      // stacked A of q/k/v or gate/up: one pass
            case BlockShrink b when b.blocks().length == 1 ->
                    MatMul.matmul(b.blocks()[0], xs, n, s, par);            // one diagonal block on this rank: it reads all of x
            case BlockShrink b -> {                                         // block-diagonal A: block j reads input slice j
                Matrix[] blocks = b.blocks();
                int ib = xWidth / blocks.length, rb = blocks[0].rows();
                float[] xb = ws.xb = LoraWorkspace.Segment.atLeast(ws.xb, n * ib), sb = ws.sb = LoraWorkspace.Segment.atLeast(ws.sb, n * rb);
                for (int j = 0; j < blocks.length; j++) {
                    copyColumns(xs, xWidth, j * ib, ib, xb, 0, ib, n);
                    MatMul.matmul(blocks[j], xb, n, sb, par);
                    copyColumns(sb, rb, 0, rb, s, j * rb, w.sWidth(), n);
                }
            }
        }
        stats.add(w.bytes(), w.flopsPerToken() * n);
    }

    /** S-LoRA's one collective per group, over the segments that need it, packed into one buffer. */
    private static void exchange(List<LoraBatch.Segment> segs, int layer, ProjectionGroup g, LoraWorkspace ws, Communicator comm) {
        int len = 0;
        Exchange kind = Exchange.NONE;
        for (LoraBatch.Segment seg : segs) {
            PreparedAdapter.GroupWork w = seg.adapter().work(layer, g);
            if (w.exchange() == Exchange.NONE) continue;
            kind = w.exchange();
            len += seg.tokens().length * w.sWidth();
        }
        if (kind == Exchange.NONE) return;
        float[] buf = ws.exchange = LoraWorkspace.atLeast(ws.exchange, len);
        int off = 0;
        for (int i = 0; i < segs.size(); i++) {
            PreparedAdapter.GroupWork w = segs.get(i).adapter().work(layer, g);
            if (w.exchange() == Exchange.NONE) continue;
            int m = segs.get(i).tokens().length * w.sWidth();
            System.arraycopy(ws.segment(i).s, 0, buf, off, m);
            off += m;
        }
        Collective tag = switch (g) {
            case QKV -> Collective.LORA_QKV;
            case O -> Collective.LORA_O;
            case GATE_UP -> Collective.LORA_GATE_UP;
            case DOWN -> Collective.LORA_DOWN;
        };
        if (kind == Exchange.ALL_REDUCE) {
            comm.allReduceSum(buf, 0, len, tag);
            off = 0;
            for (int i = 0; i < segs.size(); i++) {
                PreparedAdapter.GroupWork w = segs.get(i).adapter().work(layer, g);
                if (w.exchange() == Exchange.NONE) continue;
                int m = segs.get(i).tokens().length * w.sWidth();
                System.arraycopy(buf, off, ws.segment(i).s, 0, m);
                off += m;
            }
            return;
        }
        int N = comm.size();
        float[] all = ws.gathered = LoraWorkspace.atLeast(ws.gathered, N * len);    // [N][len]
        comm.allGather(buf, 0, len, all, 0, tag);
        off = 0;
        for (int i = 0; i < segs.size(); i++) {
            PreparedAdapter.GroupWork w = segs.get(i).adapter().work(layer, g);
            if (w.exchange() == Exchange.NONE) continue;
            LoraWorkspace.Segment sc = ws.segment(i);
            int sw = w.sWidth(), n = segs.get(i).tokens().length;
            float[] full = sc.full = LoraWorkspace.Segment.atLeast(sc.full, n * N * sw); // token row = [rank 0's sWidth | rank 1's | ...]
            for (int t = 0; t < n; t++)
                for (int k = 0; k < N; k++) System.arraycopy(all, k * len + off + t * sw, full, (t * N + k) * sw, sw);
            off += n * sw;
            sc.shrunk = full;
        }
    }

    /** y[token, outFrom ..] += s·Bᵀ for each member, as scaled additions of the rows of the stored Bᵀ. */
    private static void expand(LoraBatch.Segment seg, int layer, ProjectionGroup g, LoraWorkspace.Segment ws, float[] y, int yWidth, int N) {
        PreparedAdapter.GroupWork w = seg.adapter().work(layer, g);
        int[] tokens = seg.tokens();
        int n = tokens.length;
        float[] s = ws.shrunk;
        boolean gathered = w.exchange() == Exchange.ALL_GATHER;
        int rowWidth = gathered ? N * w.sWidth() : w.sWidth();
        int[] sOffs = ws.sOffs = LoraWorkspace.Segment.atLeast(ws.sOffs, n), yOffs = ws.yOffs = LoraWorkspace.Segment.atLeast(ws.yOffs, n);
        for (PreparedAdapter.Expand e : w.expands()) {
            Matrix[] blocks = e.blocks();                      // Bᵀ: one [r, out] or diagonal blocks [r/M, out/M]
            int outB = blocks[0].cols();
            if (gathered) {                                    // the member's N slices side by side: its full (padded) rank
                int r = N * e.width();
                float[] sIn = ws.sIn = LoraWorkspace.Segment.atLeast(ws.sIn, n * r);
                for (int k = 0; k < N; k++) copyColumns(s, rowWidth, k * w.sWidth() + e.sFrom(), e.width(), sIn, k * e.width(), r, n);
                for (int i = 0; i < n; i++) {
                    sOffs[i] = i * r;
                    yOffs[i] = tokens[i] * yWidth + e.outFrom();
                }
                MatMul.accumulateTransposedTokens(blocks[0], sIn, sOffs, y, yOffs, n);
                continue;
            }
            int rIn = e.width() / blocks.length;
            for (int j = 0; j < blocks.length; j++) {
                for (int i = 0; i < n; i++) {
                    sOffs[i] = i * rowWidth + e.sFrom() + j * rIn;
                    yOffs[i] = tokens[i] * yWidth + e.outFrom() + j * outB;
                }
                MatMul.accumulateTransposedTokens(blocks[j], s, sOffs, y, yOffs, n);
            }
        }
    }

    /** dst[i, dstFrom .. dstFrom+width) = src[i, from .. from+width) for i < n. */
    private static void copyColumns(float[] src, int srcWidth, int from, int width, float[] dst, int dstFrom, int dstWidth, int n) {
        for (int i = 0; i < n; i++) System.arraycopy(src, i * srcWidth + from, dst, i * dstWidth + dstFrom, width);
    }
}
