package dev.bdserve.bench;

import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.MatMul;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Q8Matrix;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tensor.VectorWidth;
import dev.bdserve.tensor.Weight;
import dev.bdserve.tensor.quant.BlockFormat;
import dev.bdserve.tensor.quant.QuantMatrix;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Prints JSON lines with the machine's roofline (read bandwidth, FMA peak), the GEMV / GEMM throughput of
 * {@link MatMul} and ("quant") the GEMV of Q8_0 and of every {@link BlockFormat}. Weights are rotated over enough
 * copies that the working set is ≥ 256 MB, so every pass streams from DRAM (no L3 reuse between passes).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp "target/classes:target/lib/*" dev.bdserve.bench.KernelBench \
 *     [threads] [quick] [gemv|gemm|quant]</pre>
 * ({@code -Dbdserve.vector.bits=128|256|512} picks the kernels' width, {@link VectorWidth}; the roofline probes run at
 * the host's width).
 */
public final class KernelBench {
    private KernelBench() {}

    static final long WORKING_SET = 256L << 20;

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        boolean quick = args.length > 1 && args[1].equals("quick");
        String only = args.length > 2 ? args[2] : "";   // "gemv", "gemm" or "quant": run just that kernel
        try (SpinPool pool = new SpinPool(threads)) {
            double bw = MemoryProbes.streamReadBandwidthGBs(pool);
            System.gc();
            double peak = MemoryProbes.fmaPeakGflops(pool);
            System.out.printf(Locale.ROOT, "{\"probe\":\"read_bandwidth\",\"threads\":%d,\"gbs\":%.2f}%n", threads, bw);
            System.out.printf(Locale.ROOT, "{\"probe\":\"fma_peak\",\"threads\":%d,\"gflops\":%.1f}%n", threads, peak);
            if (only.equals("quant") || only.isEmpty()) {
                int[][] shapes = {{2048, 2048}, {8192, 2048}, {2048, 8192}, {128256, 2048}};
                for (int[] s : shapes) {
                    runQuant(pool, "q8_0", s[0], s[1], bw, quick);
                    for (BlockFormat f : BlockFormat.all()) runQuant(pool, f.name(), s[0], s[1], bw, quick);
                }
                if (only.equals("quant")) return;
            }
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

    /**
     * The GEMV (T = 1) of a quantized weight: Q8_0 ({@link Q8Matrix}) or a {@link BlockFormat} ({@link QuantMatrix}),
     * its blocks random bytes from 0x10 to 0x3B, so that every fp16 scale, wherever a format keeps it, is a normal
     * number from 2^-11 to 1 (no subnormal arithmetic; the speed does not depend on the values otherwise).
     */
    static void runQuant(SpinPool pool, String format, int rows, int cols, double bw, boolean quick) {
        BlockFormat f = BlockFormat.of(format);
        SplittableRandom r = new SplittableRandom(42);
        java.util.List<Weight> made = new java.util.ArrayList<>();     // copies up to the working set, 1 to 16
        do {
            if (f != null) {
                byte[] b = new byte[Math.toIntExact((long) rows * cols / f.blockSize() * f.blockBytes())];
                for (int i = 0; i < b.length; i++) b[i] = (byte) (0x10 + r.nextInt(0x2C));
                made.add(new QuantMatrix(f, rows, cols, b));
            } else {
                byte[] q = new byte[rows * cols];
                r.nextBytes(q);
                short[] d = new short[rows * cols / 32];
                for (int i = 0; i < d.length; i++) d[i] = Float.floatToFloat16((float) r.nextDouble(1e-3, 1e-2));
                made.add(new Q8Matrix(rows, cols, q, d));
            }
        } while (made.size() < 16 && made.size() * made.get(0).bytes() < WORKING_SET);
        Weight[] ws = made.toArray(new Weight[0]);
        int copies = ws.length;
        long bytes = ws[0].bytes();                                    // what one GEMV reads, as the weight holds it
        float[] x = new float[cols], y = new float[rows];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() - 0.5);
        long warmEnd = System.nanoTime() + (quick ? 1_000_000_000L : 3_000_000_000L);   // C2 takes seconds over these kernels
        int calls = 0;
        while (System.nanoTime() < warmEnd || calls < 3) ws[calls++ % copies].matmul(x, 1, y, pool);
        double best = Double.MAX_VALUE;
        long end = System.nanoTime() + (quick ? 300_000_000L : 1_000_000_000L);
        int reps = 0;
        while (System.nanoTime() < end || reps < 3) {
            long t0 = System.nanoTime();
            for (Weight w : ws) w.matmul(x, 1, y, pool);
            best = Math.min(best, (System.nanoTime() - t0) / (double) copies);
            reps++;
        }
        System.out.printf(Locale.ROOT,
                "{\"kernel\":\"gemv\",\"format\":\"%s\",\"rows\":%d,\"cols\":%d,\"threads\":%d,\"us\":%.1f,\"gbs\":%.2f,"
                        + "\"gweights_s\":%.2f,\"frac_bw\":%s,\"copies\":%d,\"vector_bits\":%d}%n",
                format, rows, cols, pool.parallelism(), best / 1e3, bytes / best, (double) rows * cols / best,
                Figures.round(bytes / best / bw), copies, VectorWidth.BITS);
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
