package dev.bdserve.cli;

import dev.bdserve.bench.DecodeBench;
import dev.bdserve.bench.Figures;
import dev.bdserve.bench.MemoryProbes;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.AdapterTools;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.SpinPool;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

import static dev.bdserve.bench.Figures.round;

/** {@code ./bdserve bench decode}: static-batch decode speed, optionally with adapters and under TP, as one JSON object. */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Static-batch prefill and decode speed (optionally with adapters, under TP), against the read bandwidth and FMA peak measured in the same run.")
final class BenchDecodeCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;
    @Option(names = "--batch", defaultValue = "1", description = "Sequences decoded together (default: ${DEFAULT-VALUE}).") int batch;
    @Option(names = "--prompt-tokens", defaultValue = "64", description = "Prompt length per sequence (default: ${DEFAULT-VALUE}).") int promptTokens;
    @Option(names = "--gen-tokens", defaultValue = "32", description = "Decode steps (default: ${DEFAULT-VALUE}).") int genTokens;
    @Option(names = "--warmup", defaultValue = "8", description = "Warm-up decode steps before each timed run (default: ${DEFAULT-VALUE}).") int warmup;
    @Option(names = "--warmup-seconds", defaultValue = "4", description = "Go on warming up until each batch's adapter assignment has had this long in the process, so the JIT has compiled the LoRA kernels (default: ${DEFAULT-VALUE}).") double warmupSeconds;
    @Option(names = "--prefill-chunk", defaultValue = "512", description = "Most prompt tokens per step.") int prefillChunk;
    @Option(names = "--seed", defaultValue = "1") long seed;
    @Option(names = "--json", description = "Print one JSON object (the default output; kept for vLLM-style scripts).") boolean json;
    @Option(names = "--no-probes", description = "Skip the bandwidth and FMA peak probes.") boolean noProbes;
    @Option(names = "--repeats", defaultValue = "1", description = "With --compare-sharding or --adapters: the runs, interleaved step by step, this many times (merged) (default: ${DEFAULT-VALUE}).") int repeats;
    @Option(names = "--rounds", defaultValue = "1", description = "Base-only: alternate this many (decode run, probes) pairs and report each pair's bandwidth roofline fraction (and, at batch > 1, its FMA peak fraction) and their medians, for machines whose speed drifts (default: ${DEFAULT-VALUE}).") int rounds;
    @Option(names = "--vs-batch", defaultValue = "0", description = "With --rounds: each round also runs base-only at this batch just before, and reports the speed-up of --batch over it per round and as the median (e.g. --batch 16 --vs-batch 1: batched decode against single stream, both at the host's speed of that moment).") int vsBatch;
    @Option(names = "--vs-tp", defaultValue = "0", description = "With --rounds (threads transport): load the model a second time as a group of this many ranks with the same threads per rank, run it just before the main group in each round, and report the speed-up of --tp over it per round and as the median; with probes, also the FMA peak at both thread counts, so the speed-up is set against how the host scales from one to the other at that moment (e.g. --tp 2 --threads 2 --vs-tp 1).") int vsTp;
    @Option(names = "--vs-threads", defaultValue = "0", description = "With --vs-tp: the comparison group's threads in all (default: --vs-tp times the main group's threads per rank; e.g. --tp 2 --threads 2 --vs-tp 1 --vs-threads 2 sets TP 2 against TP 1 on both threads).") int vsThreads;
    @Option(names = "--adapters", defaultValue = "0", description = "Spread the batch over N synthetic adapters (round-robin); base-only runs in the same process for comparison.") int adapters;
    @Option(names = "--rank", defaultValue = "16", description = "Rank of the synthetic adapters (default: ${DEFAULT-VALUE}).") int rank;
    @Option(names = "--bd-nblocks", defaultValue = "0", description = "Make them BD-LoRA adapters with this many blocks.") int bdNblocks;
    @Option(names = "--adapter-dtype", defaultValue = "bf16", description = "f32, bf16 or f16 (default: ${DEFAULT-VALUE}).") String adapterDtype;
    @Option(names = "--adapter-targets", defaultValue = "all", description = "Modules the adapters touch (default: all seven).") String adapterTargets;
    @Option(names = "--compare-sharding", description = "Run base-only, replicated, slora (dense rank --rank) and bdlora (parameter-matched BD rank, --bd-nblocks blocks, default the TP degree) in one run.") boolean compare;

    @Override
    public Integer call() throws Exception {
        if (vsBatch != 0 && (vsBatch < 1 || rounds < 2 || adapters > 0 || compare))
            throw new IllegalArgumentException("--vs-batch needs a batch ≥ 1, --rounds ≥ 2 and a base-only run (no --adapters or --compare-sharding)");
        if (vsTp != 0 && (vsTp < 1 || vsTp == modelOptions.tp || rounds < 2 || adapters > 0 || compare || vsBatch > 0
                || !modelOptions.transport.equals("threads")))
            throw new IllegalArgumentException("--vs-tp needs a TP degree ≥ 1 other than --tp, --rounds ≥ 2, the threads transport and a "
                    + "base-only run (no --adapters, --compare-sharding or --vs-batch)");
        if (vsThreads != 0 && (vsTp == 0 || vsThreads < vsTp))
            throw new IllegalArgumentException("--vs-threads needs --vs-tp and at least one thread per rank of it");
        int vsThreadsPerRank = vsThreads > 0 ? vsThreads / vsTp : modelOptions.threadsPerRank();
        if (compare && adapters < 1) adapters = 1;
        try (ModelOptions.Loaded m = modelOptions.load(kvBytesForRun(modelOptions.tp));
             TpGroup vsGroup = vsTp > 0 ? loadComparisonGroup(m.runner(), vsThreadsPerRank) : null) {
            TpGroup g = m.runner();
            LlamaConfig c = g.config();
            var w = g.rootModel().weights();
            DecodeBench bench = new DecodeBench(g);
            DecodeBench.Settings settings = new DecodeBench.Settings(batch, promptTokens, genTokens, warmup, warmupSeconds, prefillChunk, seed);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("model", m.path().toString());
            out.put("dtype", w.layers()[0].wqkv().format());
            out.put("weight_bytes_by_format", w.bytesByFormat());
            out.put("kernels", g.kernels());
            out.put("kv_cache_dtype", modelOptions.kvCacheDtype.toLowerCase(java.util.Locale.ROOT));
            out.put("params", c.parameterCount());
            out.put("tp", g.tpSize());
            out.put("tp_transport", modelOptions.transport);
            out.put("threads_per_rank", modelOptions.groupOptions().threadsPerRank());
            if (modelOptions.simLatencyUs > 0) {
                out.put("simulated", true);
                out.put("simulated_latency_us_per_collective", modelOptions.simLatencyUs);
            }
            out.put("batch", batch);
            out.put("prompt_tokens", promptTokens);
            out.put("gen_tokens", genTokens);
            out.put("warmup_steps", warmup);
            out.put("warmup_seconds", warmupSeconds);
            out.put("weight_bytes_per_step_rank0", w.streamedBytes());

            Map<String, DecodeBench.Timing> runs = new LinkedHashMap<>();
            Map<String, Object> runInfo = new LinkedHashMap<>();
            runs.put("base", bench.run(settings, new int[0]));
            Path tmp = Files.createTempDirectory("bdserve-bench-adapters");
            try {
                DType adt = DType.parse(adapterDtype);
                if (compare) {
                    int nb = bdNblocks > 0 ? bdNblocks : Math.max(2, g.tpSize());
                    LoraAdapter[] dense = synth(tmp, "dense", c, rank, 0, adt);
                    int bdRank = AdapterTools.parameterMatchedBdRank(dense[0], c, nb);
                    LoraAdapter[] bd = synth(tmp, "bd", c, bdRank, nb, adt);
                    Map<String, int[]> ids = new LinkedHashMap<>();
                    ids.put("base", new int[0]);
                    ids.put("replicated", register(g, dense, LoraSharding.REPLICATED));
                    ids.put("slora", register(g, synth(tmp, "dense2", c, rank, 0, adt), LoraSharding.SLORA));
                    ids.put("bdlora", register(g, bd, LoraSharding.BDLORA));
                    // the strategies interleaved step by step, `repeats` times, merged: the slow spells of a
                    // shared host fall on every strategy alike (the base run above was the warm-up)
                    runs.putAll(interleaved(bench, settings, ids));
                    runInfo.put("repeats", repeats);
                    runInfo.put("interleaved", "step by step");
                    runInfo.put("dense_rank", rank);
                    runInfo.put("dense_params_each", dense[0].parameters());
                    runInfo.put("bd_nblocks", nb);
                    runInfo.put("bd_rank_parameter_matched", bdRank);
                    runInfo.put("bd_params_each", bd[0].parameters());
                } else if (adapters > 0) {
                    LoraAdapter[] as = synth(tmp, "a", c, rank, bdNblocks, adt);
                    int[] ids = register(g, as, LoraSharding.parse(modelOptions.loraSharding));
                    // base-only and the adapter batch interleaved step by step (as --compare-sharding): a slow
                    // spell of the host falls on both (the base run above was the warm-up)
                    Map<String, int[]> both = new LinkedHashMap<>();
                    both.put("base", new int[0]);
                    both.put("lora", ids);
                    runs.putAll(interleaved(bench, settings, both));
                    runInfo.put("interleaved", "step by step");
                    runInfo.put("repeats", repeats);
                    runInfo.put("rank", rank);
                    runInfo.put("bd_nblocks", bdNblocks);
                    runInfo.put("params_each", as[0].parameters());
                    runInfo.put("sharding", g.adapterSharding(ids[0]).name().toLowerCase());
                    runInfo.put("adapter_bytes_held_rank0", g.adapterBytesHeld(ids[0]));
                }
            } finally {
                deleteTree(tmp);
            }
            if (adapters > 0) {
                runInfo.put("adapters", adapters);
                runInfo.put("adapter_dtype", adapterDtype);
                out.put("adapters", runInfo);
            }
            double bw = Double.NaN, peak = Double.NaN;
            if (!noProbes) {
                try (SpinPool pool = new SpinPool(m.threads())) {
                    bw = MemoryProbes.streamReadBandwidthGBs(pool);
                    peak = MemoryProbes.fmaPeakGflops(pool);
                    out.put("pool_dispatch_us", round(MemoryProbes.dispatchMicros(pool)));
                }
                out.put("read_bandwidth_gbs", round(bw));
                out.put("fma_peak_gflops", round(peak));
            }
            DecodeBench.Timing base = runs.get("base");
            Map<String, Object> results = new LinkedHashMap<>();
            for (var e : runs.entrySet()) {
                DecodeBench.Timing t = e.getValue();
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("prefill_tokens_per_s", round(t.prefillTokensPerSecond()));
                r.put("decode_tokens_per_s", round(t.decodeTokensPerSecond()));
                r.put("decode_ms_per_step", round(1000 / t.decodeStepsPerSecond()));
                if (t.heapBytesPerStep() >= 0) r.put("heap_mb_per_decode_step", round(t.heapBytesPerStep() / 1e6));
                if (t != base) r.put("decode_vs_base", round(t.decodeTokensPerSecond() / base.decodeTokensPerSecond()));
                if (t != base && t.decodeSteps() == base.decodeSteps())   // interleaved with base: step i of both ran in one round
                    r.put("step_time_over_base_median_paired_steps", round(DecodeBench.medianPairedRatio(t, base)));
                r.put("collectives_per_decode_step", perStep(t.decodeComm(), t.decodeSteps()));
                r.put("collective_ms_per_decode_step", round(1000 * t.decodeComm().totalSeconds() / t.decodeSteps()));
                r.put("collectives_prefill", t.prefillComm().toMap());
                double flops = DecodeBench.flopsPerToken(g.rootModel(), promptTokens + genTokens / 2) * t.decodeTokensPerSecond();
                r.put("decode_gflops_rank0", round(flops / 1e9));
                if (!noProbes) {
                    // Each rank streams its own slice; the roofline here is rank 0's bytes against the whole machine's bandwidth.
                    r.put("bandwidth_roofline_fraction", round(w.streamedBytes() * g.tpSize() * t.decodeStepsPerSecond() / (bw * 1e9)));
                    r.put("compute_peak_fraction", round(flops * g.tpSize() / (peak * 1e9)));
                }
                if (t.loraBytesPerStep() > 0) {
                    double loraMs = 1000 * t.loraDecodeSeconds() / t.decodeSteps();
                    r.put("lora_ms_per_step", round(loraMs));
                    r.put("lora_bytes_per_step_rank0", (long) t.loraBytesPerStep());
                    r.put("lora_flops_per_step_rank0", (long) t.loraFlopsPerStep());
                    if (!noProbes) {
                        double share = g.tpSize() == 1 ? 1 : 1.0 / g.tpSize(); // rank 0's share of the machine
                        double boundMs = 1000 * Math.max(t.loraBytesPerStep() / (bw * 1e9 * share), t.loraFlopsPerStep() / (peak * 1e9 * share));
                        r.put("lora_bound_ms_per_step", round(boundMs));
                        r.put("lora_time_vs_bound", round(loraMs / boundMs));
                    }
                }
                results.put(e.getKey(), r);
            }
            if (rounds > 1 && (!noProbes || vsBatch > 0 || vsTp > 0) && adapters == 0) {
                PairedRounds.Versus vs = vsBatch > 0 ? new PairedRounds.Versus("batch_" + vsBatch, bench, settings.withBatch(vsBatch), g.tpSize(), m.threads())
                        : vsTp > 0 ? new PairedRounds.Versus("tp_" + vsTp, new DecodeBench(vsGroup), settings, vsGroup.tpSize(),
                                vsTp * vsThreadsPerRank)
                        : null;
                out.put("paired_rounds", new PairedRounds(rounds, !noProbes).run(bench, settings, vs, vsTp > 0, w.streamedBytes() * g.tpSize(), m.threads(),
                        DecodeBench.flopsPerToken(g.rootModel(), promptTokens + genTokens / 2), g.tpSize()));
            }
            if (runs.size() == 1 || !compare && adapters == 0) out.putAll((Map<String, Object>) results.get("base"));
            else out.put("runs", results);
            if (compare) {
                double sl = runs.get("slora").decodeSeconds() / runs.get("slora").decodeSteps();
                double bd = runs.get("bdlora").decodeSeconds() / runs.get("bdlora").decodeSteps();
                out.put("slora_over_bdlora_step_time", round(sl / bd));
                out.put("mechanism", DecodeMechanism.of(runs, modelOptions.simLatencyUs));
            }
            out.putAll(DecodeBench.environment(m.threads()));
            System.out.println(Figures.json(out));
        }
        return 0;
    }

    /**
     * A KV pool per rank that holds the whole run (every sequence's prompt and generated tokens, plus
     * the warm-up's), never less than the tools' default; KV heads split over the TP ranks (spec §1).
     */
    private long kvBytesForRun(int tp) {
        LlamaConfig c;
        try (var src = dev.bdserve.model.ModelFiles.open(modelOptions.resolve())) { c = src.config(); }
        int kvDimPerRank = Math.max(1, (c.numKvHeads() + tp - 1) / tp) * c.headDim();
        long blocksPerSeq = (promptTokens + genTokens + warmup + 15) / 16 + 1;
        int batches = compare ? 4 : 1;                   // --compare-sharding holds the 4 strategies' batches at once
        long need = ((long) batches * Math.max(batch, vsBatch) + 1) * blocksPerSeq * dev.bdserve.model.KvPool.blockBytes(c.numLayers(), kvDimPerRank, 16);
        return Math.max(TpGroup.Options.DEFAULT_KV_BYTES, need);
    }

    /**
     * The {@code --vs-tp} group: the model loaded a second time. Refused with one message, before it is loaded, when
     * the heap left cannot hold a second copy of the weights (the main group's, all ranks).
     */
    private TpGroup loadComparisonGroup(TpGroup main, int threadsPerRank) {
        long weights = main.rootModel().weights().streamedBytes() * main.tpSize();
        System.gc();
        Runtime rt = Runtime.getRuntime();
        String refusal = secondCopyRefusal(weights, rt.maxMemory() - (rt.totalMemory() - rt.freeMemory()), rt.maxMemory());
        if (refusal != null) throw new IllegalArgumentException(refusal);
        return modelOptions.loadThreadsGroup(vsTp, threadsPerRank, kvBytesForRun(vsTp));
    }

    /** Why a second copy of {@code weights} bytes cannot be loaded into a heap with {@code free} of {@code max} left, or null. */
    static String secondCopyRefusal(long weights, long free, long max) {
        long need = weights + weights / 10;              // the weights and a margin for the group's KV pool and scratch
        if (need <= free) return null;
        return String.format(java.util.Locale.ROOT, "--vs-tp loads the model a second time (%.1f GB of weights) and the heap has %.1f GB "
                + "of %.1f GB left: raise it with BDSERVE_HEAP, or run the two TP degrees as separate benchmarks", weights / 1e9, free / 1e9, max / 1e9);
    }

    /** The batches of {@code ids} run interleaved step by step, {@code --repeats} times, each one's timings merged. */
    private Map<String, DecodeBench.Timing> interleaved(DecodeBench bench, DecodeBench.Settings settings, Map<String, int[]> ids) {
        Map<String, DecodeBench.Timing> merged = new LinkedHashMap<>();
        for (int k = 0; k < Math.max(1, repeats); k++)
            bench.runInterleaved(settings, ids).forEach((name, t) -> merged.merge(name, t, DecodeBench.Timing::merge));
        return merged;
    }

    static Map<String, Double> perStep(CommStats s, int steps) {
        Map<String, Double> m = new LinkedHashMap<>();
        s.callCounts().forEach((k, v) -> { if (k != Collective.CONTROL) m.put(k.name().toLowerCase(), v / (double) steps); });
        return m;
    }

    private LoraAdapter[] synth(Path tmp, String prefix, LlamaConfig c, int r, int nb, DType dt) {
        LoraAdapter[] out = new LoraAdapter[adapters];
        for (int i = 0; i < adapters; i++) {
            Path d = tmp.resolve(prefix + i);
            new SynthAdapter(r, nb, SynthAdapter.parseTargets(adapterTargets), dt, r, false, 0.3, 1000 + i).write(d, c, "bench");
            out[i] = PeftAdapterLoader.load(prefix + i, d, c, Math.max(r, 1));
        }
        return out;
    }

    private static int[] register(TpGroup g, LoraAdapter[] as, LoraSharding s) {
        int[] ids = new int[as.length];
        for (int i = 0; i < as.length; i++) ids[i] = g.addAdapter(as[i], s);
        return ids;
    }

    private static void deleteTree(Path p) throws IOException {
        try (var files = Files.walk(p)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
