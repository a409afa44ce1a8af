package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.Shard;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.util.Arrays;

/**
 * How one module's factors are split over the ranks under one sharding strategy (spec §2): one small type per
 * strategy × tensor-parallel role, each saying only how it slices A and B, chosen once per module by {@link #of}
 * from a strategy already resolved for the adapter ({@link LoraSharding#resolve}).
 *
 * <p>Notation: x·Aᵀ is the shrink (A [r, in]), s·(sB)ᵀ the expand (B [out, r], scaling folded in); a rank holds
 * output columns [o0, o1) of a column-parallel module and input rows [i0, i1) of a row-parallel one.
 */
sealed interface LoraLayout {

    /** The layout of module {@code m} under {@code strategy} (resolved: never AUTO) at TP {@code tp}. */
    static LoraLayout of(LoraSharding strategy, LoraModule m, int tp) {
        boolean col = m.columnParallel();
        return switch (strategy) {
            case AUTO -> throw new IllegalArgumentException("resolve the AUTO sharding before laying an adapter out");
            case REPLICATED -> col ? new ReplicatedColumn() : new ReplicatedRow();
            case SLORA -> tp == 1 ? (col ? new ReplicatedColumn() : new ReplicatedRow()) : col ? new SLoraColumn() : new SLoraRow();
            case BDLORA -> col ? new BlockDiagonalB() : new BlockDiagonalA();
        };
    }

    /** One module's factors on one rank. */
    Part slice(LoraWeights w, LlamaConfig c, Shard shard, int[] local);

    /** The shrink of one module on one rank: rows of a dense A, or the diagonal blocks of a block-diagonal A. */
    sealed interface Shrink {
        /** Parameters this rank holds. */
        long parameters();
        long bytes();
    }

    /** Rows of a dense A [width, inLocal], stacked with the group's other members into one pass over the input. */
    record DenseShrink(Matrix a) implements Shrink {
        @Override public long parameters() { return (long) a.rows() * a.cols(); }
        @Override public long bytes() { return a.bytes(); }
    }

    /** A block-diagonal A: block j [r/M, in/M] reads input slice j of the rank's input. */
    record BlockShrink(Matrix[] blocks) implements Shrink {
        @Override public long parameters() { return Arrays.stream(blocks).mapToLong(b -> (long) b.rows() * b.cols()).sum(); }
        @Override public long bytes() { return Arrays.stream(blocks).mapToLong(Matrix::bytes).sum(); }
    }

    /**
     * One module's share on one rank.
     *
     * @param shrink   its shrink
     * @param width    columns of the shrink output on this rank
     * @param exchange the collective between shrink and expand
     * @param b        expand factors [out, r] as stored: one matrix, or the diagonal blocks of a block-diagonal B
     * @param outFrom  first output column of the expand, relative to the module's columns on this rank
     */
    record Part(Shrink shrink, int width, PreparedAdapter.Exchange exchange, Matrix[] b, int outFrom) {}

    /** Replicated, column-parallel: the whole A on every rank, the rows of B for the rank's output columns. */
    record ReplicatedColumn() implements LoraLayout {
        @Override public Part slice(LoraWeights w, LlamaConfig c, Shard sh, int[] local) {
            Matrix b = denseB(w);
            return new Part(new DenseShrink(denseA(w)), w.rank(), PreparedAdapter.Exchange.NONE,
                    new Matrix[]{sh.size() == 1 ? b : b.sliceRows(local[0], local[1])}, 0);
        }
    }

    /** Replicated, row-parallel: the columns of A for the rank's input rows, the whole B (partials summed with the base's). */
    record ReplicatedRow() implements LoraLayout {
        @Override public Part slice(LoraWeights w, LlamaConfig c, Shard sh, int[] local) {
            Matrix a = denseA(w);
            return new Part(new DenseShrink(sh.size() == 1 ? a : a.sliceCols(local[0], local[1])), w.rank(),
                    PreparedAdapter.Exchange.NONE, new Matrix[]{denseB(w)}, 0);
        }
    }

    /**
     * S-LoRA, column-parallel: r (zero-padded to a multiple of N) split over the ranks; the shrink outputs are
     * all-gathered so each rank expands its output columns from the whole rank.
     */
    record SLoraColumn() implements LoraLayout {
        @Override public Part slice(LoraWeights w, LlamaConfig c, Shard sh, int[] local) {
            int n = sh.size(), rPad = (w.rank() + n - 1) / n * n, width = rPad / n;
            Matrix a = padRows(denseA(w), rPad), b = padCols(denseB(w), rPad);
            return new Part(new DenseShrink(a.sliceRows(sh.rank() * width, (sh.rank() + 1) * width)), width,
                    PreparedAdapter.Exchange.ALL_GATHER, new Matrix[]{b.sliceRows(local[0], local[1])}, 0);
        }
    }

    /**
     * S-LoRA, row-parallel: partial shrinks x_i·A_iᵀ of the rank's input rows, summed by an all-reduce; each rank then
     * expands one N-th of the output columns, so the base's all-reduce sums the whole update once.
     */
    record SLoraRow() implements LoraLayout {
        @Override public Part slice(LoraWeights w, LlamaConfig c, Shard sh, int[] local) {
            int o = w.module().out(c) / sh.size();
            return new Part(new DenseShrink(denseA(w).sliceCols(local[0], local[1])), w.rank(), PreparedAdapter.Exchange.ALL_REDUCE,
                    new Matrix[]{denseB(w).sliceRows(sh.rank() * o, (sh.rank() + 1) * o)}, sh.rank() * o);
        }
    }

    /** BD-LoRA, column-parallel (B block-diagonal): the A rows of the rank's blocks and its diagonal B blocks. */
    record BlockDiagonalB() implements LoraLayout {
        @Override public Part slice(LoraWeights w, LlamaConfig c, Shard sh, int[] local) {
            int per = blocksPerRank(w, sh), rb = w.rank() / w.nblocks(), ob = w.module().out(c) / w.nblocks();
            Matrix[] b = new Matrix[per];
            for (int j = 0; j < per; j++) {
                int blk = sh.rank() * per + j;
                b[j] = w.b().sliceRows(blk * ob, (blk + 1) * ob);
            }
            return new Part(new DenseShrink(w.a().sliceRows(sh.rank() * per * rb, (sh.rank() + 1) * per * rb)), w.rank() / sh.size(),
                    PreparedAdapter.Exchange.NONE, b, 0);
        }
    }

    /** BD-LoRA, row-parallel (A block-diagonal): the rank's A blocks on its input rows, the B columns of its blocks. */
    record BlockDiagonalA() implements LoraLayout {
        @Override public Part slice(LoraWeights w, LlamaConfig c, Shard sh, int[] local) {
            int per = blocksPerRank(w, sh), rb = w.rank() / w.nblocks(), r0 = sh.rank() * per * rb, r1 = r0 + per * rb;
            Matrix mine = w.a().sliceRows(r0, r1);
            Matrix[] blocks = new Matrix[per];
            for (int j = 0; j < per; j++) blocks[j] = mine.sliceRows(j * rb, (j + 1) * rb);
            return new Part(new BlockShrink(blocks), w.rank() / sh.size(), PreparedAdapter.Exchange.NONE,
                    new Matrix[]{w.b().sliceCols(r0, r1)}, 0);
        }
    }

    /** Blocks of a BD factor on each rank; the strategy's resolution has checked the adapter fits. */
    private static int blocksPerRank(LoraWeights w, Shard sh) {
        if (w.kind() == LoraKind.DENSE || w.nblocks() % sh.size() != 0)
            throw new IllegalStateException("module " + w.module() + " (" + w.kind() + ", " + w.nblocks() + " blocks) was not resolved for bdlora at TP " + sh.size());
        return w.nblocks() / sh.size();
    }

    /** Dense A [r, in] in its stored dtype (BD-A blocks expanded with zeros). */
    private static Matrix denseA(LoraWeights w) {
        return w.kind() != LoraKind.BD_A ? w.a() : toMatrix(w.denseA(), w.a().dtype());
    }

    /** Dense s·B [out, r] (BD-B blocks expanded with zeros). */
    private static Matrix denseB(LoraWeights w) {
        return w.kind() != LoraKind.BD_B ? w.b() : toMatrix(w.denseB(), w.b().dtype());
    }

    private static Matrix toMatrix(double[][] d, DType dtype) {
        int rows = d.length, cols = d[0].length;
        float[] f = new float[rows * cols];
        for (int r = 0; r < rows; r++) for (int k = 0; k < cols; k++) f[r * cols + k] = (float) d[r][k];
        return Matrix.fromFloats(dtype, rows, cols, f); // values come from that dtype: exact
    }

    private static Matrix padRows(Matrix m, int rows) {
        if (m.rows() == rows) return m;
        return Matrix.fromFloats(m.dtype(), rows, m.cols(), Arrays.copyOf(m.toFloats(), rows * m.cols()));
    }

    private static Matrix padCols(Matrix m, int cols) {
        if (m.cols() == cols) return m;
        float[] src = m.toFloats(), f = new float[m.rows() * cols];
        for (int r = 0; r < m.rows(); r++) System.arraycopy(src, r * m.cols(), f, r * cols, m.cols());
        return Matrix.fromFloats(m.dtype(), m.rows(), cols, f);
    }
}
