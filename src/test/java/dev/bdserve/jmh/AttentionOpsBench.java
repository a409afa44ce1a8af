package dev.bdserve.jmh;

import dev.bdserve.tensor.AttentionOps;
import dev.bdserve.tensor.VectorOps;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The attention kernels over one sequence's cache at Llama-160M's head shape (head size 64, 12 KV heads,
 * blocks of 16 positions), cache-resident: block-transposed key scores and register-held value sums
 * (AttentionOps) against the per-position dot and axpy they replaced. Time per operation covers all
 * {@code ctx} positions of one head.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class AttentionOpsBench {
    static final int D = 64, KV = 12 * D, BS = 16;
    @Param({"128"}) int ctx;

    float[] q, keys, values, scores, out;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(5);
        q = new float[D];
        keys = new float[ctx * KV];
        values = new float[ctx * KV];
        for (int i = 0; i < D; i++) q[i] = (float) r.nextDouble();
        for (int i = 0; i < keys.length; i++) { keys[i] = (float) r.nextDouble(); values[i] = (float) r.nextDouble(); }
        scores = new float[ctx + AttentionOps.SCORE_PAD];
        out = new float[D];
    }

    @Benchmark
    public void scoresTransposed(Blackhole bh) {
        for (int j = 0; j < ctx; j += BS) AttentionOps.scoresTransposed(q, 0, keys, j * KV + 3 * D * BS, BS, BS, D, 0.125f, scores, j, Math.min(j + BS, ctx - BS) * KV + 3 * D * BS);
        bh.consume(scores);
    }

    @Benchmark
    public void scoresPerPositionDot(Blackhole bh) {
        for (int j = 0; j < ctx; j++) scores[j] = VectorOps.dot(q, 0, keys, j * KV + 3 * D, D) * 0.125f;
        bh.consume(scores);
    }

    @Benchmark
    public void softmax(Blackhole bh) {
        VectorOps.softmaxInPlace(scores, 0, ctx);
        bh.consume(scores);
    }

    @Benchmark
    public void weightedSum(Blackhole bh) {
        java.util.Arrays.fill(out, 0f);
        for (int j = 0; j < ctx; j += BS) AttentionOps.weightedSum(scores, j, BS, values, j * KV + 3 * D, KV, D, out, 0, Math.min(j + BS, ctx - BS) * KV + 3 * D);
        bh.consume(out);
    }

    @Benchmark
    public void weightedSumPerPositionAxpy(Blackhole bh) {
        java.util.Arrays.fill(out, 0f);
        for (int j = 0; j < ctx; j++) VectorOps.axpy(scores[j], values, j * KV + 3 * D, out, 0, D);
        bh.consume(out);
    }
}
