package dev.bdserve.cli;

import dev.bdserve.bench.DecodeBench;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;

import java.util.LinkedHashMap;
import java.util.Map;

import static dev.bdserve.bench.Figures.round;

/** The {@code mechanism} object of {@code bench decode --compare-sharding}: why S-LoRA is slower than BD-LoRA, in this run's numbers. */
final class DecodeMechanism {
    private DecodeMechanism() {}

    /**
     * The paper's mechanism in this run's numbers: S-LoRA's step time predicted as the base step time plus
     * its extra collectives per step times the latency of one collective, set against the measured one; and
     * BD-LoRA's step time against base-only (no extra collective, so the two should be close). The latency
     * of one collective is the fastest decode-sized all-reduce seen on rank 0 plus any simulated latency:
     * the mean would also count the time a rank waits for the slower one, which is part of T_base already.
     */
    static Map<String, Object> of(Map<String, DecodeBench.Timing> runs, double simulatedMicros) {
        DecodeBench.Timing base = runs.get("base"), sl = runs.get("slora"), bd = runs.get("bdlora");
        double baseStep = base.decodeSeconds() / base.decodeSteps();
        long baseCalls = base.decodeComm().modelCalls();
        double perCollective = Math.min(base.decodeComm().minSeconds(Collective.ATTN_OUT), base.decodeComm().minSeconds(Collective.MLP_OUT));
        if (Double.isNaN(perCollective)) perCollective = 0;   // one rank: no collectives
        perCollective += simulatedMicros * 1e-6;              // spun before each collective, outside its timer
        double extraPerStep = (sl.decodeComm().modelCalls() / (double) sl.decodeSteps()) - baseCalls / (double) base.decodeSteps();
        double predicted = baseStep + extraPerStep * perCollective;
        double measured = sl.decodeSeconds() / sl.decodeSteps();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("base_ms_per_step", round(1000 * baseStep));
        m.put("us_per_collective", round(1e6 * perCollective));
        m.put("us_mean_per_collective_on_base_incl_wait", round(baseCalls == 0 ? 0 : 1e6 * modelSeconds(base.decodeComm()) / baseCalls));
        m.put("slora_extra_collectives_per_step", round(extraPerStep));
        m.put("slora_predicted_ms_per_step", round(1000 * predicted));
        m.put("slora_measured_ms_per_step", round(1000 * measured));
        m.put("slora_measured_over_predicted", round(measured / predicted));
        m.put("bdlora_extra_collectives_per_step", round(bd.decodeComm().modelCalls() / (double) bd.decodeSteps() - baseCalls / (double) base.decodeSteps()));
        m.put("bdlora_over_base_step_time", round(bd.decodeSeconds() / bd.decodeSteps() / baseStep));
        m.put("bdlora_over_replicated_step_time", round(bd.decodeSeconds() / bd.decodeSteps() / (runs.get("replicated").decodeSeconds() / runs.get("replicated").decodeSteps())));
        // the same ratios as medians over paired steps (each strategy's step i ran in the same round)
        m.put("bdlora_over_base_median_paired_steps", round(DecodeBench.medianPairedRatio(bd, base)));
        m.put("slora_over_bdlora_median_paired_steps", round(DecodeBench.medianPairedRatio(sl, bd)));
        return m;
    }

    private static double modelSeconds(CommStats s) {
        double t = 0;
        for (Collective c : Collective.values()) if (c != Collective.CONTROL) t += s.seconds(c);
        return t;
    }
}
