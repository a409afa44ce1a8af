package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.Shard;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.util.ArrayList;
import java.util.List;

/**
 * An adapter laid out for the grouped LoRA kernels of one tensor-parallel rank under one sharding
 * strategy (spec §2). For each layer and each module group that shares an input (q/k/v, o, gate/up,
 * down): the rank's shrink factors stacked into one matrix (one pass over the input per segment), the
 * collective that follows the shrink (none, or S-LoRA's all-gather / all-reduce), and per member the
 * expand factors for the rank's output columns, split into diagonal blocks where B is block-diagonal.
 * Built once per adapter and rank.
 */
public final class PreparedAdapter {
    /** The module groups, in the order the forward pass meets them. */
    public enum Group {
        QKV(LoraModule.Q, LoraModule.K, LoraModule.V), O(LoraModule.O), GATE_UP(LoraModule.GATE, LoraModule.UP), DOWN(LoraModule.DOWN);
        final LoraModule[] members;
        Group(LoraModule... m) { members = m; }
        public LoraModule[] members() { return members.clone(); }
        public boolean columnParallel() { return members[0].columnParallel(); }
    }

    /** The collective between shrink and expand. */
    public enum Exchange { NONE, ALL_GATHER, ALL_REDUCE }

    /**
     * One member's expand: its shrink output columns times Bᵀ, added to output columns
     * [outFrom, outFrom + Σ block rows) of the rank's group output.
     *
     * @param module  the projection
     * @param sFrom   first column of this member in the rank's local shrink output
     * @param width   its local shrink width; after an all-gather the member's input is the N slices
     *                [k·sWidth + sFrom, + width) for k = 0..N−1, side by side
     * @param outFrom first output column in the rank's group output row
     * @param blocks  expand factors stored transposed: one [r, outLocal] matrix, or diagonal blocks [r/M, out/M] (BD-B)
     */
    public record Expand(LoraModule module, int sFrom, int width, int outFrom, Matrix[] blocks) {}

    /**
     * The work of one group of one layer on this rank.
     *
     * @param shrink        stacked A rows of the members (dense A): [Σ local widths, inLocal], or null
     * @param shrinkBlocks  block-diagonal A (BD-A, a single member): blocks [r/M, in/M] on consecutive input slices, or null
     * @param sWidth        local shrink output width
     * @param exchange      collective after the shrink
     * @param expands       members' expands
     * @param bytes         bytes of the factors this rank reads for the group
     * @param flopsPerToken FLOPs per token of this rank's shrink and expand
     */
    public record GroupWork(Matrix shrink, Matrix[] shrinkBlocks, int sWidth, Exchange exchange, List<Expand> expands,
                            long bytes, long flopsPerToken) {}

    private final LoraAdapter adapter;
    private final LoraSharding sharding;
    private final GroupWork[][] work; // [layer][Group.ordinal()], null where the adapter does not touch the group

    private PreparedAdapter(LoraAdapter adapter, LoraSharding sharding, GroupWork[][] work) {
        this.adapter = adapter;
        this.sharding = sharding;
        this.work = work;
    }

    public LoraAdapter adapter() { return adapter; }
    public LoraSharding sharding() { return sharding; }
    public GroupWork work(int layer, Group g) { return work[layer][g.ordinal()]; }

    /** Adapter bytes this rank holds. */
    public long bytesHeld() {
        long b = 0;
        for (GroupWork[] l : work) for (GroupWork g : l) if (g != null) b += g.bytes();
        return b;
    }

    /** Lays out an adapter for one rank; {@code sharding} is a resolved strategy (not AUTO). */
    public static PreparedAdapter prepare(LoraAdapter a, LlamaConfig c, Shard shard, LoraSharding sharding) {
        if (sharding == LoraSharding.AUTO) throw new IllegalArgumentException("resolve AUTO before preparing");
        if (sharding == LoraSharding.BDLORA) {
            String why = AdapterTools.bdLoraReason(a, c, shard.size());
            if (why != null) throw new IllegalArgumentException("adapter " + a.name() + " cannot use bdlora sharding at TP " + shard.size() + ": " + why);
        }
        GroupWork[][] work = new GroupWork[c.numLayers()][Group.values().length];
        for (int l = 0; l < c.numLayers(); l++)
            for (Group g : Group.values()) work[l][g.ordinal()] = prepareGroup(a, c, shard, sharding, l, g);
        return new PreparedAdapter(a, sharding, work);
    }

    /** [from, to) of the module's output columns (column-parallel) or input rows (row-parallel) held by the rank. */
    static int[] localSlice(LoraModule m, LlamaConfig c, Shard s) {
        int hd = c.headDim();
        return switch (m) {
            case Q, O -> new int[]{s.firstHead(c) * hd, (s.firstHead(c) + s.localHeads(c)) * hd};
            case K, V -> new int[]{s.firstKvHead(c) * hd, (s.firstKvHead(c) + s.localKvHeads(c)) * hd};
            case GATE, UP, DOWN -> new int[]{s.rank() * s.localFfn(c), (s.rank() + 1) * s.localFfn(c)};
        };
    }

    private static GroupWork prepareGroup(LoraAdapter a, LlamaConfig c, Shard sh, LoraSharding strategy, int layer, Group g) {
        int n = sh.size(), rank = sh.rank();
        List<Matrix> stack = new ArrayList<>();
        List<Expand> expands = new ArrayList<>();
        Matrix[] shrinkBlocks = null;
        int sWidth = 0, outFrom = 0;
        long bytes = 0, flops = 0;
        Exchange exchange = Exchange.NONE;
        for (LoraModule m : g.members) {
            LoraWeights w = a.get(layer, m);
            int[] sl = localSlice(m, c, sh);
            int localOut = m.columnParallel() ? sl[1] - sl[0] : m.out(c);
            if (w == null) { outFrom += localOut; continue; }
            Matrix shrinkPart;
            Matrix[] bBlocks;
            int width, expOut = outFrom;
            if (strategy == LoraSharding.BDLORA) {
                int M = w.nblocks(), per = M / n, rb = w.rank() / M;      // blocks per rank, rank per block
                if (m.columnParallel()) {                                 // BD-B: A rows of my blocks, my diagonal B blocks
                    shrinkPart = w.a().sliceRows(rank * per * rb, (rank + 1) * per * rb);
                    int ob = m.out(c) / M;
                    bBlocks = new Matrix[per];
                    for (int j = 0; j < per; j++) {
                        int blk = rank * per + j;
                        bBlocks[j] = w.b().sliceRows(blk * ob, (blk + 1) * ob);
                    }
                } else {                                                  // BD-A: my A blocks on my input slice, B columns of my rank slice
                    shrinkPart = null;
                    shrinkBlocks = rowBlocks(w.a().sliceRows(rank * per * rb, (rank + 1) * per * rb), per);
                    bBlocks = new Matrix[]{w.b().sliceCols(rank * per * rb, (rank + 1) * per * rb)};
                }
                width = w.rank() / n;
            } else {
                Matrix A = denseA(w), B = denseB(w);                      // [r, in], [out, r]
                if (strategy == LoraSharding.SLORA && n > 1 && m.columnParallel()) {
                    int rPad = (w.rank() + n - 1) / n * n;                // zero-pad r to a multiple of N
                    A = padRows(A, rPad);
                    B = padCols(B, rPad);
                    width = rPad / n;
                    shrinkPart = A.sliceRows(rank * width, (rank + 1) * width);
                    bBlocks = new Matrix[]{B.sliceRows(sl[0], sl[1])};
                    exchange = Exchange.ALL_GATHER;
                } else if (strategy == LoraSharding.SLORA && n > 1) {
                    width = w.rank();
                    shrinkPart = A.sliceCols(sl[0], sl[1]);               // partial x_i·A_i, summed by the all-reduce
                    int o = m.out(c) / n;
                    bBlocks = new Matrix[]{B.sliceRows(rank * o, (rank + 1) * o)};
                    expOut = rank * o;                                    // into this rank's own column slice
                    exchange = Exchange.ALL_REDUCE;
                } else if (m.columnParallel()) {                          // replicated: whole A, my output rows of B
                    width = w.rank();
                    shrinkPart = A;
                    bBlocks = new Matrix[]{n == 1 ? B : B.sliceRows(sl[0], sl[1])};
                } else {                                                  // replicated: my input columns of A, whole B
                    width = w.rank();
                    shrinkPart = n == 1 ? A : A.sliceCols(sl[0], sl[1]);
                    bBlocks = new Matrix[]{B};
                }
            }
            if (shrinkPart != null) stack.add(shrinkPart);
            Matrix[] bT = new Matrix[bBlocks.length];                     // transposed once: expand streams rows of Bᵀ
            for (int j = 0; j < bT.length; j++) bT[j] = bBlocks[j].transpose();
            expands.add(new Expand(m, sWidth, width, expOut, bT));
            sWidth += width;
            long memberBytes = 0, memberParams = 0;
            if (shrinkPart != null) { memberBytes += shrinkPart.bytes(); memberParams += (long) shrinkPart.rows() * shrinkPart.cols(); }
            if (!m.columnParallel() && strategy == LoraSharding.BDLORA)
                for (Matrix x : shrinkBlocks) { memberBytes += x.bytes(); memberParams += (long) x.rows() * x.cols(); }
            for (Matrix x : bBlocks) { memberBytes += x.bytes(); memberParams += (long) x.rows() * x.cols(); }
            bytes += memberBytes;
            flops += 2 * memberParams;
            outFrom += localOut;
        }
        if (expands.isEmpty()) return null;
        Matrix shrink = stack.isEmpty() ? null : concat(stack);
        return new GroupWork(shrink, shrinkBlocks, sWidth, exchange, List.copyOf(expands), bytes, flops);
    }

    /** Dense A [r, in] in its stored dtype (BD-A blocks expanded with zeros). */
    private static Matrix denseA(LoraWeights w) {
        if (w.kind() != LoraKind.BD_A) return w.a();
        return toMatrix(w.denseA(), w.a().dtype());
    }

    /** Dense s·B [out, r] (BD-B blocks expanded with zeros). */
    private static Matrix denseB(LoraWeights w) {
        if (w.kind() != LoraKind.BD_B) return w.b();
        return toMatrix(w.denseB(), w.b().dtype());
    }

    private static Matrix toMatrix(double[][] d, DType dtype) {
        int rows = d.length, cols = d[0].length;
        float[] f = new float[rows * cols];
        for (int r = 0; r < rows; r++) for (int k = 0; k < cols; k++) f[r * cols + k] = (float) d[r][k];
        return Matrix.fromFloats(dtype, rows, cols, f); // values come from that dtype: exact
    }

    private static Matrix padRows(Matrix m, int rows) {
        if (m.rows() == rows) return m;
        float[] f = java.util.Arrays.copyOf(m.toFloats(), rows * m.cols());
        return Matrix.fromFloats(m.dtype(), rows, m.cols(), f);
    }

    private static Matrix padCols(Matrix m, int cols) {
        if (m.cols() == cols) return m;
        float[] src = m.toFloats(), f = new float[m.rows() * cols];
        for (int r = 0; r < m.rows(); r++) System.arraycopy(src, r * m.cols(), f, r * cols, m.cols());
        return Matrix.fromFloats(m.dtype(), m.rows(), cols, f);
    }

    /** Stacks A factors; members of mixed dtypes are widened to fp32. */
    private static Matrix concat(List<Matrix> ms) {
        if (ms.size() == 1) return ms.get(0);
        DType d = ms.get(0).dtype();
        boolean same = ms.stream().allMatch(m -> m.dtype() == d);
        if (same) return Matrix.concatRows(ms.toArray(Matrix[]::new));
        return Matrix.concatRows(ms.stream().map(m -> Matrix.ofF32(m.rows(), m.cols(), m.toFloats())).toArray(Matrix[]::new));
    }

    /** Splits a packed block-diagonal factor [rows, k] into its n blocks of rows [rows/n, k]. */
    static Matrix[] rowBlocks(Matrix packed, int n) {
        Matrix[] b = new Matrix[n];
        int h = packed.rows() / n;
        for (int j = 0; j < n; j++) b[j] = packed.sliceRows(j * h, (j + 1) * h);
        return b;
    }
}
