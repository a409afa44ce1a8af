package dev.bdserve.train;

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

    /** y[T, out] += s · u[T, r] · Bᵀ (block-diagonal B: row o reads its own rank slice). */
    void expand(float[] u, int T, float[] y) {
        for (int t = 0; t < T; t++)
            for (int o = 0; o < out; o++)
                y[t * out + o] += scaling * TrainKernels.dot(b, o * bCols, u, t * rank + bRankOffset(o), bCols);
    }

    /**
     * Backward of y += s·B·A·x given dy [T, out], the saved x [T, in] and u = A·x [T, r]: accumulates
     * into {@code g.gradA}, {@code g.gradB} (g is this factor or a worker's twin) and into dx [T, in].
     * du [T, r] is scratch.
     */
    void backward(float[] x, float[] u, float[] dy, int T, float[] du, float[] dx, LoraFactor g) {
        java.util.Arrays.fill(du, 0, T * rank, 0f);
        for (int t = 0; t < T; t++)
            for (int o = 0; o < out; o++) {
                float gy = scaling * dy[t * out + o];
                if (gy == 0) continue;
                int uOff = t * rank + bRankOffset(o);
                TrainKernels.axpy(gy, u, uOff, g.gradB, o * bCols, bCols);      // dB[o, :] += s·dy[t,o]·u[t, slice]
                TrainKernels.axpy(gy, b, o * bCols, du, uOff, bCols);           // du[t, slice] += s·dy[t,o]·B[o, :]
            }
        for (int t = 0; t < T; t++)
            for (int k = 0; k < rank; k++) {
                float gu = du[t * rank + k];
                if (gu == 0) continue;
                int xOff = t * in + aInputOffset(k);
                TrainKernels.axpy(gu, x, xOff, g.gradA, k * aCols, aCols);      // dA[k, :] += du[t,k]·x[t, slice]
                TrainKernels.axpy(gu, a, k * aCols, dx, xOff, aCols);           // dx[t, slice] += du[t,k]·A[k, :]
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
