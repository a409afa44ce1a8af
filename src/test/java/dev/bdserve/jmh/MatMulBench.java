package dev.bdserve.jmh;

import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.MatMul;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Parallel;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * GEMV (T = 1) and GEMM (T > 1) of {@link MatMul} by weight dtype, one thread, y[T, rows] = x[T, cols]·Wᵀ.
 * The weight (2048 × 2048) fits in L2/L3 on most machines only in part: numbers are kernel throughput, not
 * DRAM-bound decode (KernelBench measures that).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class MatMulBench {
    @Param({"F32", "BF16", "F16"}) String dtype;
    @Param({"1", "16"}) int tokens;
    @Param({"2048"}) int rows;
    @Param({"2048"}) int cols;

    Matrix w;
    float[] x, y;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(42);
        float[] f = new float[rows * cols];
        for (int i = 0; i < f.length; i++) f[i] = (float) (r.nextDouble() - 0.5) * 0.1f;
        w = Matrix.fromFloats(DType.valueOf(dtype), rows, cols, f);
        x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() - 0.5);
        y = new float[tokens * rows];
    }

    @Benchmark
    public void matmul(Blackhole bh) {
        MatMul.matmul(w, x, tokens, y, Parallel.serial());
        bh.consume(y);
    }
}
