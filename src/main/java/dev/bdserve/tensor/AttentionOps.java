package dev.bdserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorized kernels of paged attention over one KV block. Keys are stored transposed inside a block
 * ({@code [headDim][blockSize]} per KV head), so the scores of a block's positions are computed with
 * vector lanes running over positions: no horizontal sum per key. Values keep the row layout
 * ({@code [position][kvDim]}) and are summed with the output held in vector registers. The scalar twins
 * are {@link ScalarKernels#scoresTransposed} and {@link ScalarKernels#weightedSum}.
 */
public final class AttentionOps {
    private AttentionOps() {}

    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();

    /**
     * scores[sOff+i] = scale · Σ_{d&lt;D} q[qOff+d] · kt[ktOff + d·stride + i] for i &lt; n, n ≤ stride.
     * {@code ahead} is the offset of the run of D·stride keys to be read next (the next block's, or this one's
     * again): one float of each of its rows is loaded while this block computes, so the next run streams in
     * behind the FMAs instead of stalling on its first lines (runs are 4 KB at head size 64, blocks of 16).
     * Lanes past n up to the next multiple of the vector length may be written with values of unused
     * positions of the block when they are inside both arrays: {@code scores} needs {@link #SCORE_PAD}
     * spare floats after the last position.
     */
    public static void scoresTransposed(float[] q, int qOff, float[] kt, int ktOff, int stride, int n, int D,
                                        float scale, float[] scores, int sOff, int ahead) {
        int i = 0;
        float touch = 0f;
        for (; i + VL < n && i + 2 * VL <= stride; i += 2 * VL) {          // two vectors of positions
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, b0 = a0, b1 = a0;
            int d = 0, k = ktOff + i;
            for (; d + 2 <= D; d += 2, k += 2 * stride) {
                FloatVector q0 = FloatVector.broadcast(FS, q[qOff + d]), q1 = FloatVector.broadcast(FS, q[qOff + d + 1]);
                a0 = FloatVector.fromArray(FS, kt, k).fma(q0, a0);
                b0 = FloatVector.fromArray(FS, kt, k + VL).fma(q0, b0);
                a1 = FloatVector.fromArray(FS, kt, k + stride).fma(q1, a1);
                b1 = FloatVector.fromArray(FS, kt, k + stride + VL).fma(q1, b1);
                touch += kt[ahead + d * stride] + kt[ahead + (d + 1) * stride];
            }
            if (d < D) {
                FloatVector q0 = FloatVector.broadcast(FS, q[qOff + d]);
                a0 = FloatVector.fromArray(FS, kt, k).fma(q0, a0);
                b0 = FloatVector.fromArray(FS, kt, k + VL).fma(q0, b0);
            }
            a0.add(a1).mul(scale).intoArray(scores, sOff + i);
            b0.add(b1).mul(scale).intoArray(scores, sOff + i + VL);
        }
        for (; i < n && i + VL <= stride; i += VL) {                     // one vector of positions
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            int d = 0, k = ktOff + i;
            for (; d + 4 <= D; d += 4, k += 4 * stride) {
                a0 = FloatVector.fromArray(FS, kt, k).fma(FloatVector.broadcast(FS, q[qOff + d]), a0);
                a1 = FloatVector.fromArray(FS, kt, k + stride).fma(FloatVector.broadcast(FS, q[qOff + d + 1]), a1);
                a2 = FloatVector.fromArray(FS, kt, k + 2 * stride).fma(FloatVector.broadcast(FS, q[qOff + d + 2]), a2);
                a3 = FloatVector.fromArray(FS, kt, k + 3 * stride).fma(FloatVector.broadcast(FS, q[qOff + d + 3]), a3);
            }
            for (; d < D; d++, k += stride) a0 = FloatVector.fromArray(FS, kt, k).fma(FloatVector.broadcast(FS, q[qOff + d]), a0);
            a0.add(a1).add(a2.add(a3)).mul(scale).intoArray(scores, sOff + i);
        }
        for (; i < n; i++) {                                             // blocks narrower than a vector
            float s = 0f;
            for (int d = 0; d < D; d++) s = Math.fma(q[qOff + d], kt[ktOff + d * stride + i], s);
            scores[sOff + i] = s * scale;
        }
        if (touch == Float.MIN_VALUE) sink = touch;                       // keeps the read-ahead loads
    }

    /** Spare floats {@link #scoresTransposed} may write after the last position of a sequence. */
    public static final int SCORE_PAD = 2 * VL;

    /**
     * out[oOff+d] += Σ_{j&lt;n} p[pOff+j] · v[vOff + j·stride + d] for d &lt; D (the output stays in registers over j).
     * {@code ahead}: as in {@link #scoresTransposed}, the offset of the next run of n·stride values.
     */
    public static void weightedSum(float[] p, int pOff, int n, float[] v, int vOff, int stride, int D, float[] out, int oOff,
                                   int ahead) {
        int d = 0;
        float touch = 0f;
        for (; d + 4 * VL <= D; d += 4 * VL) {
            int o = oOff + d;
            FloatVector a0 = FloatVector.fromArray(FS, out, o), a1 = FloatVector.fromArray(FS, out, o + VL),
                        a2 = FloatVector.fromArray(FS, out, o + 2 * VL), a3 = FloatVector.fromArray(FS, out, o + 3 * VL);
            for (int j = 0, k = vOff + d; j < n; j++, k += stride) {
                FloatVector pj = FloatVector.broadcast(FS, p[pOff + j]);
                a0 = FloatVector.fromArray(FS, v, k).fma(pj, a0);
                a1 = FloatVector.fromArray(FS, v, k + VL).fma(pj, a1);
                a2 = FloatVector.fromArray(FS, v, k + 2 * VL).fma(pj, a2);
                a3 = FloatVector.fromArray(FS, v, k + 3 * VL).fma(pj, a3);
                touch += v[ahead + j * stride + d] + v[ahead + j * stride + d + 2 * VL];
            }
            a0.intoArray(out, o);
            a1.intoArray(out, o + VL);
            a2.intoArray(out, o + 2 * VL);
            a3.intoArray(out, o + 3 * VL);
        }
        for (; d + VL <= D; d += VL) {
            FloatVector a0 = FloatVector.fromArray(FS, out, oOff + d);
            for (int j = 0, k = vOff + d; j < n; j++, k += stride) a0 = FloatVector.fromArray(FS, v, k).fma(FloatVector.broadcast(FS, p[pOff + j]), a0);
            a0.intoArray(out, oOff + d);
        }
        for (; d < D; d++) {
            float s = out[oOff + d];
            for (int j = 0; j < n; j++) s = Math.fma(p[pOff + j], v[vOff + j * stride + d], s);
            out[oOff + d] = s;
        }
        if (touch == Float.MIN_VALUE) sink = touch;
    }

    /**
     * {@link #scoresTransposed} over a BF16 cache: {@code kt} holds bf16 bit patterns, widened exactly to fp32 as they
     * are loaded (half the bytes per position; the products and sums are the fp32 kernel's).
     */
    public static void scoresTransposedBf16(float[] q, int qOff, short[] kt, int ktOff, int stride, int n, int D,
                                            float scale, float[] scores, int sOff, int ahead) {
        int i = 0;
        float touch = 0f;
        for (; i + VL < n && i + 2 * VL <= stride; i += 2 * VL) {          // two vectors of positions
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, b0 = a0, b1 = a0;
            int d = 0, k = ktOff + i;
            for (; d + 2 <= D; d += 2, k += 2 * stride) {
                FloatVector q0 = FloatVector.broadcast(FS, q[qOff + d]), q1 = FloatVector.broadcast(FS, q[qOff + d + 1]);
                a0 = Widening.bf16(kt, k).fma(q0, a0);
                b0 = Widening.bf16(kt, k + VL).fma(q0, b0);
                a1 = Widening.bf16(kt, k + stride).fma(q1, a1);
                b1 = Widening.bf16(kt, k + stride + VL).fma(q1, b1);
                touch += kt[ahead + d * stride] + kt[ahead + (d + 1) * stride];
            }
            if (d < D) {
                FloatVector q0 = FloatVector.broadcast(FS, q[qOff + d]);
                a0 = Widening.bf16(kt, k).fma(q0, a0);
                b0 = Widening.bf16(kt, k + VL).fma(q0, b0);
            }
            a0.add(a1).mul(scale).intoArray(scores, sOff + i);
            b0.add(b1).mul(scale).intoArray(scores, sOff + i + VL);
        }
        for (; i < n && i + VL <= stride; i += VL) {                     // one vector of positions
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            int d = 0, k = ktOff + i;
            for (; d + 4 <= D; d += 4, k += 4 * stride) {
                a0 = Widening.bf16(kt, k).fma(FloatVector.broadcast(FS, q[qOff + d]), a0);
                a1 = Widening.bf16(kt, k + stride).fma(FloatVector.broadcast(FS, q[qOff + d + 1]), a1);
                a2 = Widening.bf16(kt, k + 2 * stride).fma(FloatVector.broadcast(FS, q[qOff + d + 2]), a2);
                a3 = Widening.bf16(kt, k + 3 * stride).fma(FloatVector.broadcast(FS, q[qOff + d + 3]), a3);
            }
            for (; d < D; d++, k += stride) a0 = Widening.bf16(kt, k).fma(FloatVector.broadcast(FS, q[qOff + d]), a0);
            a0.add(a1).add(a2.add(a3)).mul(scale).intoArray(scores, sOff + i);
        }
        for (; i < n; i++) {                                             // blocks narrower than a vector
            float s = 0f;
            for (int d = 0; d < D; d++) s = Math.fma(q[qOff + d], Numerics.bf16ToFloat(kt[ktOff + d * stride + i]), s);
            scores[sOff + i] = s * scale;
        }
        if (touch == Float.MIN_VALUE) sink = touch;
    }

    /** {@link #weightedSum} over a BF16 cache ({@code v} holds bf16 bit patterns, widened exactly as loaded). */
    public static void weightedSumBf16(float[] p, int pOff, int n, short[] v, int vOff, int stride, int D, float[] out, int oOff,
                                       int ahead) {
        int d = 0;
        float touch = 0f;
        for (; d + 4 * VL <= D; d += 4 * VL) {
            int o = oOff + d;
            FloatVector a0 = FloatVector.fromArray(FS, out, o), a1 = FloatVector.fromArray(FS, out, o + VL),
                        a2 = FloatVector.fromArray(FS, out, o + 2 * VL), a3 = FloatVector.fromArray(FS, out, o + 3 * VL);
            for (int j = 0, k = vOff + d; j < n; j++, k += stride) {
                FloatVector pj = FloatVector.broadcast(FS, p[pOff + j]);
                a0 = Widening.bf16(v, k).fma(pj, a0);
                a1 = Widening.bf16(v, k + VL).fma(pj, a1);
                a2 = Widening.bf16(v, k + 2 * VL).fma(pj, a2);
                a3 = Widening.bf16(v, k + 3 * VL).fma(pj, a3);
                touch += v[ahead + j * stride + d] + v[ahead + j * stride + d + 2 * VL];
            }
            a0.intoArray(out, o);
            a1.intoArray(out, o + VL);
            a2.intoArray(out, o + 2 * VL);
            a3.intoArray(out, o + 3 * VL);
        }
        for (; d + VL <= D; d += VL) {
            FloatVector a0 = FloatVector.fromArray(FS, out, oOff + d);
            for (int j = 0, k = vOff + d; j < n; j++, k += stride) a0 = Widening.bf16(v, k).fma(FloatVector.broadcast(FS, p[pOff + j]), a0);
            a0.intoArray(out, oOff + d);
        }
        for (; d < D; d++) {
            float s = out[oOff + d];
            for (int j = 0; j < n; j++) s = Math.fma(p[pOff + j], Numerics.bf16ToFloat(v[vOff + j * stride + d]), s);
            out[oOff + d] = s;
        }
        if (touch == Float.MIN_VALUE) sink = touch;
    }

    /** Keeps the read-ahead loads live (written only in the practically impossible case above). */
    static float sink;
}
