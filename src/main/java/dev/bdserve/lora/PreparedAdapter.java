package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.util.ArrayList;
import java.util.List;

/**
 * An adapter laid out for the grouped LoRA kernels of one rank: for each layer and each module group
 * that shares an input (q/k/v, o, gate/up, down), the shrink factors of its members stacked into one
 * matrix (so the group costs one pass over its input), and per member the expand factors, split into
 * their diagonal blocks when B is block-diagonal. Built once per adapter and rank.
 */
public final class PreparedAdapter {
    /** The module groups, in the order the forward pass meets them. */
    public enum Group {
        QKV(LoraModule.Q, LoraModule.K, LoraModule.V), O(LoraModule.O), GATE_UP(LoraModule.GATE, LoraModule.UP), DOWN(LoraModule.DOWN);
        final LoraModule[] members;
        Group(LoraModule... m) { members = m; }
        public LoraModule[] members() { return members.clone(); }
    }

    /**
     * One member's expand step: s[:, sFrom .. sFrom+rank) · Bᵀ added to output columns
     * [outFrom, outFrom + out) of the group output (per block when B is block-diagonal).
     *
     * @param module  the projection
     * @param sFrom   first column of this member in the shrink output
     * @param rank    its rank r
     * @param outFrom first column in the group's output row (e.g. k starts after q in fused qkv)
     * @param blocks  expand factors: one [out, r] matrix, or nblocks diagonal blocks [out/n, r/n] (BD_B)
     */
    public record Expand(LoraModule module, int sFrom, int rank, int outFrom, Matrix[] blocks) {}

    /**
     * The work of one group of one layer.
     *
     * @param shrink      stacked A of the members with a dense A: [Σ r, in], or null when none
     * @param shrinkBlocks for a block-diagonal A (BD_A, single member): its nblocks blocks [r/n, in/n], else null
     * @param sWidth      width of the shrink output (Σ r)
     * @param expands     members' expand steps
     * @param bytes       bytes of all factors of the group
     * @param flopsPerToken multiply-adds × 2 per token
     */
    public record GroupWork(Matrix shrink, Matrix[] shrinkBlocks, int sWidth, List<Expand> expands, long bytes, long flopsPerToken) {}

    private final LoraAdapter adapter;
    private final GroupWork[][] work; // [layer][Group.ordinal()] or null when the adapter does not touch the group

    private PreparedAdapter(LoraAdapter adapter, GroupWork[][] work) {
        this.adapter = adapter;
        this.work = work;
    }

    public LoraAdapter adapter() { return adapter; }

    public GroupWork work(int layer, Group g) { return work[layer][g.ordinal()]; }

    /** Lays out an adapter for one single rank (the whole model). */
    public static PreparedAdapter prepare(LoraAdapter a, LlamaConfig c) {
        GroupWork[][] work = new GroupWork[c.numLayers()][Group.values().length];
        for (int l = 0; l < c.numLayers(); l++)
            for (Group g : Group.values()) work[l][g.ordinal()] = prepareGroup(a, c, l, g);
        return new PreparedAdapter(a, work);
    }

    private static GroupWork prepareGroup(LoraAdapter a, LlamaConfig c, int layer, Group g) {
        List<Matrix> stack = new ArrayList<>();
        List<Expand> expands = new ArrayList<>();
        Matrix[] shrinkBlocks = null;
        int sWidth = 0, outFrom = 0;
        long bytes = 0, flops = 0;
        for (LoraModule m : g.members) {
            LoraWeights w = a.get(layer, m);
            if (w != null) {
                Matrix[] bBlocks;
                if (w.kind() == LoraKind.BD_A) {
                    shrinkBlocks = rowBlocks(w.a(), w.nblocks());
                } else stack.add(w.a());
                bBlocks = w.kind() == LoraKind.BD_B ? rowBlocks(w.b(), w.nblocks()) : new Matrix[]{w.b()};
                expands.add(new Expand(m, sWidth, w.rank(), outFrom, bBlocks));
                sWidth += w.rank();
                bytes += w.bytes();
                flops += w.flopsPerToken();
            }
            outFrom += m.out(c);
        }
        if (expands.isEmpty()) return null;
        Matrix shrink = stack.isEmpty() ? null : concat(stack);
        return new GroupWork(shrink, shrinkBlocks, sWidth, List.copyOf(expands), bytes, flops);
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
