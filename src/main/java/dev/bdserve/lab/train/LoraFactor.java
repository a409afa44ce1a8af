package dev.bdserve.lab.train;

import dev.bdserve.lora.LoraModule;

import java.util.SplittableRandom;

/**
 * One module's trainable factors, in PEFT layout, dense or packed block-diagonal (spec §3):
 * {@code A [r, in/aBlocks]} and {@code B [out, r/bBlocks]}; one of aBlocks, bBlocks is 1. Row k of a packed
 * A belongs to block k / (r/aBlocks) and multiplies input slice (k / (r/aBlocks))·in/aBlocks ..; row o of a
 * packed B belongs to block o / (out/bBlocks) and reads rank slice (o / (out/bBlocks))·r/bBlocks ...
 * With one block this is ordinary LoRA: y += s·B·A·x (PEFT {@code lora.Linear.forward}).
 *
 * <p>The forward/backward below are one code path for dense, BD-A and BD-B factors: each row of A reads
 * its own input slice and each row of B its own rank slice.
 */
public final class LoraFactor {
    final LoraModule module;
    final int rank, in, out, aBlocks, bBlocks;
    final int aCols, bCols;          // packed widths: in/aBlocks, r/bBlocks
    final float scaling;
    final float[] a, b;              // [r, aCols], [out, bCols]
    final float[] gradA, gradB;      // same shapes

    LoraFactor(LoraModule module, int rank, int in, int out, int aBlocks, int bBlocks, double scaling) {
        if (aBlocks > 1 && bBlocks > 1) throw new IllegalArgumentException("only one factor is block-diagonal");
        if (in % aBlocks != 0 || out % bBlocks != 0 || rank % Math.max(aBlocks, bBlocks) != 0)
            throw new IllegalArgumentException(module + ": dimensions not divisible by the block count");
        this.module = module;
        this.rank = rank;
        this.in = in;
        this.out = out;
        this.aBlocks = aBlocks;
        this.bBlocks = bBlocks;
        this.aCols = in / aBlocks;
        this.bCols = rank / bBlocks;
        this.scaling = (float) scaling;
        this.a = new float[rank * aCols];
        this.b = new float[out * bCols];
        this.gradA = new float[a.length];
        this.gradB = new float[b.length];
    }

    /** A zero-gradient twin sharing nothing (a worker's gradient buffer uses only gradA/gradB). */
    LoraFactor emptyLike() { return new LoraFactor(module, rank, in, out, aBlocks, bBlocks, scaling); }

    /**
     * PEFT's init: A ~ kaiming_uniform(a = √5) over fan_in = A's packed width, i.e. U(−1/√fan_in, 1/√fan_in);
     * B = 0, so the adapted model starts equal to the base model.
     */
    void initPeft(SplittableRandom rng) {
        float bound = (float) (1.0 / Math.sqrt(aCols));
        for (int i = 0; i < a.length; i++) a[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        java.util.Arrays.fill(b, 0f);
    }

    int aInputOffset(int k) { return (k / (rank / aBlocks)) * aCols; }   // first input column row k of A reads
    int bRankOffset(int o) { return (o / (out / bBlocks)) * bCols; }     // first rank column row o of B reads

    /** u[T, r] = x[T, in] · Aᵀ (block-diagonal A: row k reads its own input slice). */
    void shrink(float[] x, int T, float[] u) {
        for (int t = 0; t < T; t++)
            for (int k = 0; k < rank; k++)
                u[t * rank + k] = TrainKernels.dot(a, k * aCols, x, t * in + aInputOffset(k), aCols);
    }

    /** Output rows of one block of B (all of them when B is dense). */
    int outBlock() { return out / bBlocks; }

    /**
     * bT [r, outBlock]: row k holds column k mod bCols of B's block k / bCols, i.e. B_jᵀ stacked over the blocks j
     * (Bᵀ when B is dense). Lets expand and its backward run over whole output rows of a block.
     */
    void transposeB(float[] bT) {
        int ob = outBlock();
        for (int o = 0; o < out; o++) {
            int j = o / ob, oo = o % ob;
            for (int c = 0; c < bCols; c++) bT[(j * bCols + c) * ob + oo] = b[o * bCols + c];
        }
    }

    /** y[T, out] += s · u[T, r] · Bᵀ: rank k adds s·u[t,k]·B[:, k] into the output rows of its block. */
    void expand(float[] u, float[] bT, int T, float[] y) {
        int ob = outBlock();
        for (int t = 0; t < T; t++)
            for (int k = 0; k < rank; k++)
                TrainKernels.axpy(scaling * u[t * rank + k], bT, k * ob, y, t * out + (k / bCols) * ob, ob);
    }

    /** Scratch of the backward: du [T, r] and the transposes duT, uT [r, T], xT [in, T], dyT [out, T]. */
    static final class Scratch {
        float[] du = new float[0], duT = new float[0], uT = new float[0], xT = new float[0], dyT = new float[0];

        void ensure(int T, int r, int maxDim) {
            if (du.length >= T * r && xT.length >= T * maxDim) return;
            du = new float[T * r]; duT = new float[T * r]; uT = new float[T * r];
            xT = new float[T * maxDim]; dyT = new float[T * maxDim];
        }
    }

    private static void transpose(float[] src, int rows, int cols, float[] dst) {   // [rows, cols] → [cols, rows]
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
    }

    /**
     * Backward of y += s·B·A·x given dy [T, out], the saved x [T, in], u = A·x [T, r] and bT: accumulates into
     * {@code g.gradA}, {@code g.gradB} (g is this factor or a worker's twin) and into dx [T, in]:
     * dB[o, c] = s·Σ_t dy[t, o]·u[t, j·bCols + c]; du = s·dy·B (per block); dA[k, c] = Σ_t du[t, k]·x[t, aOff(k) + c];
     * dx[t, aOff(k) ..] += du[t, k]·A[k, :]. The sums over t run as dot products over transposed copies.
     */
    void backward(float[] x, float[] u, float[] bT, float[] dy, int T, Scratch sc, float[] dx, LoraFactor g) {
        int ob = outBlock();
        float[] du = sc.du, duT = sc.duT, uT = sc.uT, xT = sc.xT, dyT = sc.dyT;
        transpose(dy, T, out, dyT);
        transpose(u, T, rank, uT);
        transpose(x, T, in, xT);
        for (int o = 0; o < out; o++) {
            int j = o / ob;
            for (int c = 0; c < bCols; c++)
                g.gradB[o * bCols + c] += scaling * TrainKernels.dot(dyT, o * T, uT, (j * bCols + c) * T, T);
        }
        for (int t = 0; t < T; t++)
            for (int k = 0; k < rank; k++)
                du[t * rank + k] = scaling * TrainKernels.dot(dy, t * out + (k / bCols) * ob, bT, k * ob, ob);
        transpose(du, T, rank, duT);
        for (int k = 0; k < rank; k++) {
            int xo = aInputOffset(k);
            for (int c = 0; c < aCols; c++) g.gradA[k * aCols + c] += TrainKernels.dot(duT, k * T, xT, (xo + c) * T, T);
        }
        for (int t = 0; t < T; t++)
            for (int k = 0; k < rank; k++) {
                float gu = du[t * rank + k];
                if (gu != 0) TrainKernels.axpy(gu, a, k * aCols, dx, t * in + aInputOffset(k), aCols);
            }
    }

    public LoraModule module() { return module; }
    public int rank() { return rank; }
    public float[] a() { return a; }
    public float[] b() { return b; }
    public float[] gradA() { return gradA; }
    public float[] gradB() { return gradB; }
    public int aCols() { return aCols; }
    public int bCols() { return bCols; }
    public int aBlocks() { return aBlocks; }
    public int bBlocks() { return bBlocks; }
    public int in() { return in; }
    public int out() { return out; }
    public double scaling() { return scaling; }
}
