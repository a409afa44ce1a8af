package dev.bdserve.lora;

import dev.bdserve.lora.LoraLayout.BlockShrink;
import dev.bdserve.lora.LoraLayout.DenseShrink;
import dev.bdserve.lora.LoraLayout.Shrink;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ProjectionGroup;
import dev.bdserve.model.Shard;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.util.ArrayList;
import java.util.List;

/**
 * An adapter laid out for the grouped LoRA kernels of one tensor-parallel rank under one resolved sharding
 * strategy (spec §2). For each layer and each {@link ProjectionGroup} (q/k/v, o, gate/up, down): the rank's shrink
 * (the members' dense A rows stacked into one matrix, one pass over the input per segment; or one block-diagonal
 * A), the collective that follows it (none, or S-LoRA's all-gather / all-reduce), and per member the expand factors
 * for the rank's output columns, split into diagonal blocks where B is block-diagonal. Each member's slices come
 * from its {@link LoraLayout}. Built once per adapter and rank.
 */
public final class PreparedAdapter {
    /** The collective between shrink and expand. */
    public enum Exchange { NONE, ALL_GATHER, ALL_REDUCE }

    /**
     * One member's expand: its shrink output columns times Bᵀ, added to output columns
     * [outFrom, outFrom + Σ block columns) of the rank's group output.
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
     * @param shrink        the members' shrink: {@link DenseShrink} [sWidth, inLocal] (stacked A rows), or one
     *                      member's {@link BlockShrink}
     * @param sWidth        local shrink output width
     * @param exchange      collective after the shrink
     * @param expands       members' expands
     * @param bytes         bytes of the factors this rank reads for the group
     * @param flopsPerToken FLOPs per token of this rank's shrink and expand
     */
    public record GroupWork(Shrink shrink, int sWidth, Exchange exchange, List<Expand> expands, long bytes, long flopsPerToken) {}

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
    /** The group's work on this rank, or null where the adapter does not touch the group. */
    public GroupWork work(int layer, ProjectionGroup g) { return work[layer][g.ordinal()]; }

    /** Adapter bytes this rank holds. */
    public long bytesHeld() {
        long b = 0;
        for (GroupWork[] l : work) for (GroupWork g : l) if (g != null) b += g.bytes();
        return b;
    }

    /**
     * Lays out an adapter for one rank under a strategy resolved for it by {@link LoraSharding#resolve} (never AUTO):
     * each module by its {@link LoraLayout}.
     */
    public static PreparedAdapter prepare(LoraAdapter a, LlamaConfig c, Shard shard, LoraSharding resolved) {
        GroupWork[][] work = new GroupWork[c.numLayers()][ProjectionGroup.values().length];
        for (int l = 0; l < c.numLayers(); l++)
            for (ProjectionGroup g : ProjectionGroup.values()) work[l][g.ordinal()] = prepareGroup(a, c, shard, resolved, l, g);
        return new PreparedAdapter(a, resolved, work);
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

    /** The members' parts side by side: stacked dense shrinks (or the one block shrink), expands at their columns. */
    private static GroupWork prepareGroup(LoraAdapter a, LlamaConfig c, Shard sh, LoraSharding strategy, int layer, ProjectionGroup g) {
        List<Matrix> stack = new ArrayList<>();
        List<Expand> expands = new ArrayList<>();
        BlockShrink blockShrink = null;
        int sWidth = 0, outFrom = 0;
        long bytes = 0, params = 0;
        Exchange exchange = Exchange.NONE;
        for (LoraModule m : LoraModule.members(g)) {
            int[] local = localSlice(m, c, sh);
            int localOut = m.columnParallel() ? local[1] - local[0] : m.out(c);
            LoraWeights w = a.get(layer, m);
            if (w != null) {
                LoraLayout.Part p = LoraLayout.of(strategy, m, sh.size()).slice(w, c, sh, local);
                switch (p.shrink()) {
                    case DenseShrink d -> stack.add(d.a());
                    case BlockShrink b -> blockShrink = b;
                }
                if (p.exchange() != Exchange.NONE) exchange = p.exchange();
                Matrix[] bT = new Matrix[p.b().length];                   // transposed once: expand streams rows of Bᵀ
                for (int j = 0; j < bT.length; j++) bT[j] = p.b()[j].transpose();
                expands.add(new Expand(m, sWidth, p.width(), outFrom + p.outFrom(), bT));
                sWidth += p.width();
                bytes += p.shrink().bytes();
                params += p.shrink().parameters();
                for (Matrix x : p.b()) { bytes += x.bytes(); params += (long) x.rows() * x.cols(); }
            }
            outFrom += localOut;
        }
        if (expands.isEmpty()) return null;
        if (blockShrink != null && (expands.size() > 1 || !stack.isEmpty()))
            throw new IllegalStateException("a block-diagonal shrink cannot share group " + g + " with other members");
        Shrink shrink = blockShrink != null ? blockShrink : new DenseShrink(concat(stack));
        return new GroupWork(shrink, sWidth, exchange, List.copyOf(expands), bytes, 2 * params);
    }

    /** Stacks A factors; members of mixed dtypes are widened to fp32. */
    private static Matrix concat(List<Matrix> ms) {
        if (ms.size() == 1) return ms.get(0);
        DType d = ms.get(0).dtype();
        boolean same = ms.stream().allMatch(m -> m.dtype() == d);
        if (same) return Matrix.concatRows(ms.toArray(Matrix[]::new));
        return Matrix.concatRows(ms.stream().map(m -> Matrix.ofF32(m.rows(), m.cols(), m.toFloats())).toArray(Matrix[]::new));
    }
}
