package dev.bdserve.lora;

import dev.bdserve.tensor.Matrix;

/**
 * One module's adapter factors in HF layout, with the scaling already folded into B.
 * Packed block-diagonal factors follow spec §3: block j of a packed [rows, cols/n] factor is rows
 * j·rows/n .. (j+1)·rows/n, and it multiplies input slice j of the dense factor's columns.
 *
 * @param module  the projection
 * @param kind    dense or which factor is block-diagonal
 * @param rank    r (from the tensor shapes)
 * @param nblocks blocks of the block-diagonal factor (1 for dense)
 * @param scaling the scaling that was folded into B
 * @param a       lora_A: [r, in] (DENSE, BD_B) or packed [r, in/n] (BD_A)
 * @param b       s·lora_B: [out, r] (DENSE, BD_A) or packed [out, r/n] (BD_B)
 */
public record LoraWeights(LoraModule module, LoraKind kind, int rank, int nblocks, double scaling, Matrix a, Matrix b) {
    public LoraWeights {
        if (kind == LoraKind.DENSE && nblocks != 1) throw new IllegalArgumentException("dense LoRA has one block");
    }

    public int in() { return kind == LoraKind.BD_A ? a.cols() * nblocks : a.cols(); }
    public int out() { return b.rows(); }

    /** Adapter parameters of this module. */
    public long parameters() { return (long) a.rows() * a.cols() + (long) b.rows() * b.cols(); }

    /** Bytes of both factors. */
    public long bytes() { return a.bytes() + b.bytes(); }

    /** FLOPs per token: 2 per multiply-add of shrink and expand. */
    public long flopsPerToken() { return 2 * parameters(); }

    /** Dense A [r, in] (block-diagonal expanded with zeros for BD_A), fp64, for references and densify. */
    public double[][] denseA() {
        double[][] d = new double[rank][in()];
        int rb = rank / nblocks, ib = in() / nblocks;
        for (int i = 0; i < rank; i++)
            for (int c = 0; c < a.cols(); c++)
                d[i][kind == LoraKind.BD_A ? (i / rb) * ib + c : c] = a.get(i, c);
        return d;
    }

    /** Dense s·B [out, r] (block-diagonal expanded with zeros for BD_B), fp64. */
    public double[][] denseB() {
        double[][] d = new double[out()][rank];
        int ob = out() / nblocks, rb = rank / nblocks;
        for (int o = 0; o < out(); o++)
            for (int c = 0; c < b.cols(); c++)
                d[o][kind == LoraKind.BD_B ? (o / ob) * rb + c : c] = b.get(o, c);
        return d;
    }
}
