package dev.bdserve.bench;

import dev.bdserve.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Honest roofline probes of this machine, run on a given pool: sustained read bandwidth from DRAM and
 * peak fp32 FMA throughput. Used to express kernel results as fractions of the roofline.
 */
public final class MemoryProbes {
    private MemoryProbes() {}

    /** The host's preferred width, not the kernels' ({@code VectorWidth}): the probes measure the machine. */
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Floats in the bandwidth probe array: 2^28 = 1 GiB, far bigger than the 32 MB L3. */
    static final int STREAM_FLOATS = 1 << 28;
    static volatile float sink;

    /**
     * Read bandwidth in GB/s (10^9 bytes/s): all {@code par} threads sum disjoint contiguous parts
     * of a 1 GiB float array with vector loads, each part read as 4 side-by-side streams ({@link #sum}). The array is written
     * first (pages faulted in), one untimed warm-up pass runs, then the best of 5 timed passes.
     */
    public static double streamReadBandwidthGBs(Parallel par) {
        return streamReadBandwidthGBs(par, STREAM_FLOATS, 5);
    }

    /** As {@link #streamReadBandwidthGBs(Parallel)} on {@code floats} floats, best of {@code reps}. */
    public static double streamReadBandwidthGBs(Parallel par, int floats, int reps) {
        warmUpSum();
        float[] a = new float[floats];                      // [floats]
        int grain = 1 << 16;
        par.forRange(floats, grain, (s, e) -> java.util.Arrays.fill(a, s, e, 1f));
        float[] partial = new float[((floats + grain - 1) / grain) * 16];   // [grain blocks][16]: a cache line per chunk start
        double best = 0;
        for (int rep = 0; rep <= reps; rep++) {
            long t0 = System.nanoTime();
            par.forRange(floats, grain, (s, e) -> partial[s / grain * 16] += sum(a, s, e));
            long dt = System.nanoTime() - t0;
            if (rep > 0) best = Math.max(best, (double) floats * 4 / dt);
        }
        float tot = 0;
        for (float p : partial) tot += p;
        sink = tot;
        return best;
    }

    /** Gets {@link #sumBlock} compiled by C2 before anything is timed. */
    static void warmUpSum() {
        float[] w = new float[1 << 12];
        float r = 0;
        for (int i = 0; i < 20_000; i++) r += sumBlock(w, 0, w.length) + sumQuarters(w, 0, 1 << 10, 1 << 9);
        sink = r;
    }

    /**
     * Σ a[s..e) read as 4 quarters side by side (4 long sequential streams per thread, which this machine's
     * prefetchers serve faster than one), in calls of 16 Ki floats per quarter (short loops, compiled
     * normally rather than by OSR); the remainder past 4 whole quarters is summed as one stream.
     */
    static float sum(float[] a, int s, int e) {
        int q = (e - s) / 4 / (4 * F.length()) * (4 * F.length());
        float r = 0;
        for (int i = 0; i < q; i += 1 << 14) r += sumQuarters(a, s + i, q, Math.min(q - i, 1 << 14));
        for (int i = s + 4 * q; i < e; i += 1 << 16) r += sumBlock(a, i, Math.min(e, i + (1 << 16)));
        return r;
    }

    /** Σ of a[o + k·q .. o + k·q + n) over k = 0..3 (n a multiple of 4·VL), one accumulator per quarter. */
    static float sumQuarters(float[] a, int o, int q, int n) {
        FloatVector v0 = FloatVector.zero(F), v1 = v0, v2 = v0, v3 = v0;
        int vl = F.length();
        for (int i = 0; i < n; i += vl) {
            v0 = v0.add(FloatVector.fromArray(F, a, o + i));
            v1 = v1.add(FloatVector.fromArray(F, a, o + q + i));
            v2 = v2.add(FloatVector.fromArray(F, a, o + 2 * q + i));
            v3 = v3.add(FloatVector.fromArray(F, a, o + 3 * q + i));
        }
        return v0.add(v1).add(v2.add(v3)).reduceLanes(VectorOperators.ADD);
    }

    /** Σ a[s..e) with 4 independent vector accumulators. */
    static float sumBlock(float[] a, int s, int e) {
        FloatVector v0 = FloatVector.zero(F), v1 = v0, v2 = v0, v3 = v0;
        int i = s;
        int vl = F.length();
        for (; i + 4 * vl <= e; i += 4 * vl) {
            v0 = v0.add(FloatVector.fromArray(F, a, i));
            v1 = v1.add(FloatVector.fromArray(F, a, i + vl));
            v2 = v2.add(FloatVector.fromArray(F, a, i + 2 * vl));
            v3 = v3.add(FloatVector.fromArray(F, a, i + 3 * vl));
        }
        float r = v0.add(v1).add(v2.add(v3)).reduceLanes(VectorOperators.ADD);
        for (; i < e; i++) r += a[i];
        return r;
    }

    /**
     * Peak fp32 FMA throughput in GFLOP/s (an FMA counts 2 flops per lane): every thread runs 12
     * independent FMA chains of the preferred vector width held in registers; best of 5 runs of ≈ 40 ms each.
     */
    public static double fmaPeakGflops(Parallel par) {
        int threads = par.parallelism();
        long iters = 8_000_000;
        float[] out = new float[threads * 16];
        float[] warm = new float[12 * F.length()];
        for (int i = 0; i < 20_000; i++) fmaBlock(warm, 64, 0.5f);   // C2-compile before timing
        double best = 0;
        for (int rep = 0; rep <= 5; rep++) {
            long t0 = System.nanoTime();
            par.forRange(threads, 1, (s, e) -> {
                for (int t = s; t < e; t++) out[t * 16] += fmaChains(iters, 0.999999f + t * 1e-9f);
            });
            long dt = System.nanoTime() - t0;
            if (rep > 0) best = Math.max(best, (double) threads * iters * 12 * F.length() * 2 / dt);
        }
        float tot = 0;
        for (float v : out) tot += v;
        sink = tot;
        return best;
    }

    /** 12 independent chains acc = acc·m + c for {@code iters} rounds; returns a checksum. */
    static float fmaChains(long iters, float m) {
        float[] st = new float[12 * F.length()];           // [12][VL] chain state between calls
        for (int i = 0; i < st.length; i++) st[i] = 0.1f * (1 + i % 12);
        for (long done = 0; done < iters; done += 1 << 14) fmaBlock(st, 1 << 14, m);
        float r = 0;
        for (float v : st) r += v;
        return r;
    }

    /** {@code iters} rounds of 12 independent register FMA chains, state loaded from and stored to st. */
    static void fmaBlock(float[] st, int iters, float m) {
        int vl = F.length();
        FloatVector mv = FloatVector.broadcast(F, m), cv = FloatVector.broadcast(F, 1e-7f);
        FloatVector a0 = FloatVector.fromArray(F, st, 0), a1 = FloatVector.fromArray(F, st, vl), a2 = FloatVector.fromArray(F, st, 2 * vl);
        FloatVector a3 = FloatVector.fromArray(F, st, 3 * vl), a4 = FloatVector.fromArray(F, st, 4 * vl), a5 = FloatVector.fromArray(F, st, 5 * vl);
        FloatVector a6 = FloatVector.fromArray(F, st, 6 * vl), a7 = FloatVector.fromArray(F, st, 7 * vl), a8 = FloatVector.fromArray(F, st, 8 * vl);
        FloatVector a9 = FloatVector.fromArray(F, st, 9 * vl), a10 = FloatVector.fromArray(F, st, 10 * vl), a11 = FloatVector.fromArray(F, st, 11 * vl);
        for (int i = 0; i < iters; i++) {
            a0 = a0.fma(mv, cv); a1 = a1.fma(mv, cv); a2 = a2.fma(mv, cv); a3 = a3.fma(mv, cv);
            a4 = a4.fma(mv, cv); a5 = a5.fma(mv, cv); a6 = a6.fma(mv, cv); a7 = a7.fma(mv, cv);
            a8 = a8.fma(mv, cv); a9 = a9.fma(mv, cv); a10 = a10.fma(mv, cv); a11 = a11.fma(mv, cv);
        }
        a0.intoArray(st, 0); a1.intoArray(st, vl); a2.intoArray(st, 2 * vl); a3.intoArray(st, 3 * vl);
        a4.intoArray(st, 4 * vl); a5.intoArray(st, 5 * vl); a6.intoArray(st, 6 * vl); a7.intoArray(st, 7 * vl);
        a8.intoArray(st, 8 * vl); a9.intoArray(st, 9 * vl); a10.intoArray(st, 10 * vl); a11.intoArray(st, 11 * vl);
    }

    /** Best-of-5 microseconds per {@link Parallel#forRange} of trivial chunks: the cost of one parallel dispatch. */
    public static double dispatchMicros(Parallel par) {
        int[] sink = new int[Math.max(1, par.parallelism())];
        double best = Double.MAX_VALUE;
        for (int rep = 0; rep < 5; rep++) {
            int iters = 2_000;
            long t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) par.forRange(sink.length, 1, (s, e) -> sink[s]++);
            best = Math.min(best, (System.nanoTime() - t0) / 1e3 / iters);
        }
        return best;
    }
}
