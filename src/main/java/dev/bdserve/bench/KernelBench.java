package dev.bdserve.bench;

import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.MatMul;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tensor.VectorWidth;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Prints JSON lines with the machine's roofline (read bandwidth, FMA peak) and the GEMV / GEMM
 * throughput of {@link MatMul}. Weights are rotated over enough copies that the working set is
 * ≥ 256 MB, so every pass streams from DRAM (no L3 reuse between passes).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/classes dev.bdserve.bench.KernelBench [threads] [quick] [gemv|gemm]</pre>
 * ({@code -Dbdserve.vector.bits=128|256|512} picks the kernels' width, {@link VectorWidth}; the roofline probes run at
 * the host's width).
 */
public final class KernelBench {
    private KernelBench() {}

    static final long WORKING_SET = 256L << 20;

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        boolean quick = args.length > 1 && args[1].equals("quick");
        String only = args.length > 2 ? args[2] : "";   // "gemv" or "gemm": run just that kernel
        try (SpinPool pool = new SpinPool(threads)) {
            double bw = MemoryProbes.streamReadBandwidthGBs(pool);
            System.gc();
            double peak = MemoryProbes.fmaPeakGflops(pool);
            System.out.printf(Locale.ROOT, "{\"probe\":\"read_bandwidth\",\"threads\":%d,\"gbs\":%.2f}%n", threads, bw);
            System.out.printf(Locale.ROOT, "{\"probe\":\"fma_peak\",\"threads\":%d,\"gflops\":%.1f}%n", threads, peak);
            int[][] gemvShapes = {{8192, 2048}, {2048, 8192}, {128256, 2048}};
            for (DType d : new DType[] {DType.BF16, DType.F16, DType.F32})
                for (int[] s : gemvShapes) {
                    if (d != DType.BF16 && s[0] > 100_000 || only.equals("gemm")) continue;
                    run(pool, d, s[0], s[1], 1, bw, peak, quick);
                }
            int[][] gemmShapes = {{2048, 2048}, {8192, 2048}, {2048, 8192}};
            for (DType d : new DType[] {DType.BF16, DType.F32, DType.F16})
                for (int[] s : gemmShapes)
                    for (int T : new int[] {4, 8, 16, 32, 64}) {
                        if (d == DType.F16 && T != 16 || only.equals("gemv")) continue;
                        run(pool, d, s[0], s[1], T, bw, peak, quick);
                    }
        }
    }

    static void run(SpinPool pool, DType d, int rows, int cols, int T, double bw, double peak, boolean quick) {
        long bytes = (long) rows * cols * d.bytes();
        int copies = (int) Math.max(1, Math.min(16, (WORKING_SET + bytes - 1) / bytes));
        Matrix[] ws = new Matrix[copies];
        SplittableRandom r = new SplittableRandom(42);
        float[] tmp = new float[rows * cols];
        for (int i = 0; i < tmp.length; i++) tmp[i] = (float) (r.nextDouble() - 0.5) * 0.1f;
        for (int c = 0; c < copies; c++) ws[c] = Matrix.fromFloats(d, rows, cols, tmp);
        tmp = null;
        float[] x = new float[T * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() - 0.5);
        float[] y = new float[T * rows];
        // warm-up (JIT) then timed batches; report the best batch
        long warmEnd = System.nanoTime() + (quick ? 200_000_000L : 600_000_000L);
        int calls = 0;
        while (System.nanoTime() < warmEnd || calls < 3) MatMul.matmul(ws[calls++ % copies], x, T, y, pool);
        double best = Double.MAX_VALUE;
        int batch = Math.max(copies, 1);
        long end = System.nanoTime() + (quick ? 300_000_000L : 1_000_000_000L);
        int reps = 0;
        while (System.nanoTime() < end || reps < 3) {
            long t0 = System.nanoTime();
            for (int i = 0; i < batch; i++) MatMul.matmul(ws[i], x, T, y, pool);
            best = Math.min(best, (System.nanoTime() - t0) / (double) batch);
            reps++;
        }
        double gbs = bytes / best;
        double gflops = 2.0 * rows * cols * T / best;
        System.out.printf(Locale.ROOT,
                "{\"kernel\":\"%s\",\"dtype\":\"%s\",\"rows\":%d,\"cols\":%d,\"T\":%d,\"threads\":%d,\"us\":%.1f,"
                        + "\"gbs\":%.2f,\"gflops\":%.1f,\"frac_bw\":%s,\"frac_peak\":%s,\"copies\":%d,\"vector_bits\":%d}%n",
                T == 1 ? "gemv" : "gemm", d, rows, cols, T, pool.parallelism(), best / 1e3, gbs, gflops,
                Figures.round(gbs / bw), Figures.round(gflops / peak), copies, VectorWidth.BITS);
    }
}
