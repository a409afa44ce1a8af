package dev.bdserve.lora;

import dev.bdserve.tensor.MatMul;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.VectorOps;

import java.util.ArrayList;
import java.util.List;

/**
 * Grouped LoRA compute (SGMV-style, as in Punica / S-LoRA): for one module group of one layer, each
 * adapter's tokens run as one segment: shrink s = x·Aᵀ over all the segment's tokens at once (one pass
 * over A per segment), then expand y += s·(sB)ᵀ per member module (one pass over B), with block-diagonal
 * factors run block by block. With several segments, threads take whole segments; with one, the
 * products themselves are split across threads.
 */
public final class LoraCompute {
    private LoraCompute() {}

    /**
     * y[t, :] += LoRA_group(x[t, :]) for every token t of the batch's segments.
     *
     * @param x      [T, xWidth] the group's input
     * @param y      [T, yWidth] the group's output (fused members side by side, as in the base projection)
     */
    public static void apply(int layer, PreparedAdapter.Group g, LoraBatch batch, float[] x, int xWidth,
                             float[] y, int yWidth, Parallel par, LoraStats stats) {
        if (batch.isEmpty()) return;
        long t0 = System.nanoTime();
        List<LoraBatch.Segment> segs = new ArrayList<>();
        for (LoraBatch.Segment s : batch.segments()) if (s.adapter().work(layer, g) != null) segs.add(s);
        if (segs.size() >= 2 && par.parallelism() > 1) {
            Parallel serial = Parallel.serial();
            par.forRange(segs.size(), 1, (from, to) -> {
                for (int i = from; i < to; i++) runSegment(segs.get(i), layer, g, x, xWidth, y, yWidth, serial, stats);
            });
        } else {
            for (LoraBatch.Segment s : segs) runSegment(s, layer, g, x, xWidth, y, yWidth, par, stats);
        }
        if (stats != null) stats.addNanos(System.nanoTime() - t0);
    }

    private static void runSegment(LoraBatch.Segment seg, int layer, PreparedAdapter.Group g, float[] x, int xWidth,
                                   float[] y, int yWidth, Parallel par, LoraStats stats) {
        PreparedAdapter.GroupWork w = seg.adapter().work(layer, g);
        int[] tokens = seg.tokens();
        int n = tokens.length;
        float[] xs = new float[n * xWidth];                       // [n, xWidth] the segment's inputs
        for (int i = 0; i < n; i++) System.arraycopy(x, tokens[i] * xWidth, xs, i * xWidth, xWidth);
        float[] s = new float[n * w.sWidth()];                    // [n, Σr] shrink output
        if (w.shrink() != null) {
            MatMul.matmul(w.shrink(), xs, n, s, par);             // stacked A of q/k/v or gate/up: one pass
        } else {
            Matrix[] blocks = w.shrinkBlocks();                   // block-diagonal A: block j reads input slice j
            int ib = xWidth / blocks.length, rb = blocks[0].rows();
            float[] xb = new float[n * ib], sb = new float[n * rb];
            for (int j = 0; j < blocks.length; j++) {
                copyColumns(xs, xWidth, j * ib, ib, xb, n);
                MatMul.matmul(blocks[j], xb, n, sb, par);
                for (int i = 0; i < n; i++) System.arraycopy(sb, i * rb, s, i * w.sWidth() + j * rb, rb);
            }
        }
        for (PreparedAdapter.Expand e : w.expands()) {
            Matrix[] blocks = e.blocks();                          // one [out, r] or n diagonal blocks [out/n, r/n]
            int rIn = e.rank() / blocks.length, outB = blocks[0].rows();
            float[] sIn = new float[n * rIn], tmp = new float[n * outB];
            for (int j = 0; j < blocks.length; j++) {
                copyColumns(s, w.sWidth(), e.sFrom() + j * rIn, rIn, sIn, n);
                MatMul.matmul(blocks[j], sIn, n, tmp, par);
                for (int i = 0; i < n; i++)
                    VectorOps.add(y, tokens[i] * yWidth + e.outFrom() + j * outB, tmp, i * outB, outB);
            }
        }
        if (stats != null) stats.add(w.bytes(), w.flopsPerToken() * n);
    }

    /** dst[i, 0..width) = src[i, from..from+width) for i < n. */
    private static void copyColumns(float[] src, int srcWidth, int from, int width, float[] dst, int n) {
        for (int i = 0; i < n; i++) System.arraycopy(src, i * srcWidth + from, dst, i * width, width);
    }
}
