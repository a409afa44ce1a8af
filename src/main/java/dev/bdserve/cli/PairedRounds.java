package dev.bdserve.cli;

import dev.bdserve.bench.DecodeBench;
import dev.bdserve.bench.MemoryProbes;
import dev.bdserve.tensor.SpinPool;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.bdserve.bench.Figures.round;

/**
 * {@code --rounds} pairs of (base-only decode run, probes taken right after it: read bandwidth, and the FMA
 * peak when the batch has more than one sequence): on a host whose speed drifts with its neighbours, each
 * decode speed is set against the machine of its own moment. Reports every pair and the median fractions.
 * With {@code vs}, each round first runs that comparison too and reports the round's speed-up over it:
 * <ul>
 *   <li>{@code --vs-batch}: and that batch's bandwidth roofline fraction against the same probe;</li>
 *   <li>{@code --vs-tp}: and, with probes, the FMA peak on the comparison's thread count next to the main one's:
 *       their ratio is how far the host scales from one to the other at that moment (two vCPUs that share a
 *       physical core, or a busy host, give less than 2 for 2 threads over 1), and the speed-up over it is the
 *       scaling the engine reaches of what the host gave.</li>
 * </ul>
 * With {@code --no-probes}, only the speed-ups.
 */
final class PairedRounds {
    /**
     * The run each round sets the main one against: base-only at another batch on the same group ({@code --vs-batch}),
     * or the same batch on a group of another TP degree ({@code --vs-tp}), which uses {@code threads} threads in all.
     */
    record Versus(String label, DecodeBench bench, DecodeBench.Settings settings, int tp, int threads) {}

    private final int rounds;
    private final boolean probes;

    /** {@code rounds} pairs; {@code probes} false for {@code --no-probes}. */
    PairedRounds(int rounds, boolean probes) {
        this.rounds = rounds;
        this.probes = probes;
    }

    /** The {@code paired_rounds} object; {@code overTp}: {@code vs} is another TP degree ({@code --vs-tp}), not another batch. */
    Map<String, Object> run(DecodeBench bench, DecodeBench.Settings settings, Versus vs, boolean overTp, long bytesPerStep, int threads,
                            double flopsPerToken, int tpSize) {   // flopsPerToken: rank 0's
        List<Map<String, Object>> pairs = new ArrayList<>();
        double[] fractions = new double[rounds], computeFractions = new double[rounds];
        double[] speedups = new double[rounds], vsFractions = new double[rounds];
        double[] fmaScalings = new double[rounds], ofScaling = new double[rounds];
        boolean compute = probes && settings.batch() > 1;
        boolean fmaBoth = overTp && probes && vs.threads() != threads;  // both probes: different thread counts
        String vsKey = vs == null ? null : "decode_tokens_per_s_" + vs.label(), speedupKey = vs == null ? null : "speedup_over_" + vs.label();
        String vsFractionKey = "bandwidth_roofline_fraction_" + (vs == null ? "" : vs.label());
        String fmaVsKey = "fma_peak_gflops_" + (vs == null ? 0 : vs.threads()) + "_threads";
        String fmaScalingKey = "fma_peak_scaling_over_" + (vs == null ? "" : vs.label());
        try (SpinPool pool = new SpinPool(threads); SpinPool vsPool = fmaBoth ? new SpinPool(vs.threads()) : null) {
            for (int r = 0; r < rounds; r++) {
                DecodeBench.Timing v = vs != null ? vs.bench().run(vs.settings(), new int[0]) : null;
                DecodeBench.Timing t = bench.run(settings, new int[0]);
                Map<String, Object> p = new LinkedHashMap<>();
                p.put("decode_tokens_per_s", round(t.decodeTokensPerSecond()));
                if (v != null) {
                    speedups[r] = t.decodeTokensPerSecond() / v.decodeTokensPerSecond();
                    p.put(vsKey, round(v.decodeTokensPerSecond()));
                    p.put(speedupKey, round(speedups[r]));
                }
                if (probes) {
                    double bw = MemoryProbes.streamReadBandwidthGBs(pool, 1 << 27, 3);
                    fractions[r] = bytesPerStep * t.decodeStepsPerSecond() / (bw * 1e9);
                    p.put("read_bandwidth_gbs", round(bw));
                    p.put("bandwidth_roofline_fraction", round(fractions[r]));
                    if (v != null && !overTp) {
                        vsFractions[r] = bytesPerStep * v.decodeStepsPerSecond() / (bw * 1e9);
                        p.put(vsFractionKey, round(vsFractions[r]));
                    }
                }
                if (compute || fmaBoth) {
                    double peak = MemoryProbes.fmaPeakGflops(pool);
                    p.put("fma_peak_gflops", round(peak));
                    if (compute) {
                        computeFractions[r] = flopsPerToken * t.decodeTokensPerSecond() * tpSize / (peak * 1e9);
                        p.put("compute_peak_fraction", round(computeFractions[r]));
                    }
                    if (fmaBoth) {
                        double vsPeak = MemoryProbes.fmaPeakGflops(vsPool);
                        fmaScalings[r] = peak / vsPeak;
                        ofScaling[r] = speedups[r] / fmaScalings[r];
                        p.put(fmaVsKey, round(vsPeak));
                        p.put(fmaScalingKey, round(fmaScalings[r]));
                        p.put(speedupKey + "_over_fma_scaling", round(ofScaling[r]));
                    }
                }
                pairs.add(p);
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        if (vs != null) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("label", vs.label());
            v.put("batch", vs.settings().batch());
            v.put("tp", vs.tp());
            v.put("threads", vs.threads());
            out.put("versus", v);
        }
        out.put("pairs", pairs);
        if (vs != null) out.put(speedupKey + "_median", round(DecodeBench.median(speedups)));
        if (fmaBoth) {
            out.put(fmaScalingKey + "_median", round(DecodeBench.median(fmaScalings)));
            out.put(speedupKey + "_over_fma_scaling_median", round(DecodeBench.median(ofScaling)));
        }
        if (probes) out.put("bandwidth_roofline_fraction_median", round(DecodeBench.median(fractions)));
        if (probes && vs != null && !overTp) out.put(vsFractionKey + "_median", round(DecodeBench.median(vsFractions)));
        if (compute) out.put("compute_peak_fraction_median", round(DecodeBench.median(computeFractions)));
        return out;
    }
}
