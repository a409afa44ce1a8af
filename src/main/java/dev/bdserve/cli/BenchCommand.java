package dev.bdserve.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.bdserve.bench.DecodeBench;
import dev.bdserve.bench.MemoryProbes;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code ./bdserve bench ...}: benchmarks that print JSON. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (JSON output).",
        subcommands = {BenchCommand.Decode.class})
final class BenchCommand implements Runnable {
    @Override public void run() { picocli.CommandLine.usage(this, System.out); }

    @Command(name = "decode", mixinStandardHelpOptions = true,
            description = "Static-batch prefill and decode speed, against the read bandwidth and FMA peak measured in the same run.")
    static final class Decode implements Callable<Integer> {
        @Mixin ModelOptions modelOptions;
        @Option(names = "--batch", defaultValue = "1", description = "Sequences decoded together (default: ${DEFAULT-VALUE}).") int batch;
        @Option(names = "--prompt-tokens", defaultValue = "64", description = "Prompt length per sequence (default: ${DEFAULT-VALUE}).") int promptTokens;
        @Option(names = "--gen-tokens", defaultValue = "32", description = "Decode steps (default: ${DEFAULT-VALUE}).") int genTokens;
        @Option(names = "--warmup", defaultValue = "8", description = "Warm-up decode steps before timing (default: ${DEFAULT-VALUE}).") int warmup;
        @Option(names = "--prefill-chunk", defaultValue = "512", description = "Most prompt tokens per step.") int prefillChunk;
        @Option(names = "--seed", defaultValue = "1") long seed;
        @Option(names = "--json", description = "Print one JSON object (the default output; kept for vLLM-style scripts).") boolean json;
        @Option(names = "--no-probes", description = "Skip the bandwidth and FMA peak probes.") boolean noProbes;
        @Option(names = "--adapters", defaultValue = "0", description = "Spread the batch over N synthetic adapters (round-robin) and compare with base-only in the same run.") int adapters;
        @Option(names = "--rank", defaultValue = "16", description = "Rank of the synthetic adapters (default: ${DEFAULT-VALUE}).") int rank;
        @Option(names = "--bd-nblocks", defaultValue = "0", description = "Make them BD-LoRA adapters with this many blocks.") int bdNblocks;
        @Option(names = "--adapter-dtype", defaultValue = "bf16", description = "f32, bf16 or f16 (default: ${DEFAULT-VALUE}).") String adapterDtype;
        @Option(names = "--adapter-targets", defaultValue = "all", description = "Modules the adapters touch (default: all seven).") String adapterTargets;

        @Override
        public Integer call() throws Exception {
            try (ModelOptions.Loaded m = modelOptions.load()) {
                var w = m.model().weights();
                DecodeBench bench = new DecodeBench(m.model());
                DecodeBench.Settings settings = new DecodeBench.Settings(batch, promptTokens, genTokens, warmup, prefillChunk, seed);
                DecodeBench.Timing t = bench.run(settings);
                dev.bdserve.lora.LoraAdapter[] loras = adapters > 0 ? synthAdapters(m) : null;
                DecodeBench.Timing tl = loras != null ? bench.run(settings, loras) : null;
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("model", m.path().toString());
                out.put("dtype", w.layers()[0].wqkv().dtype().name().toLowerCase());
                out.put("params", m.model().config().parameterCount());
                out.put("batch", batch);
                out.put("prompt_tokens", promptTokens);
                out.put("gen_tokens", genTokens);
                out.put("prefill_tokens_per_s", round(t.prefillTokensPerSecond()));
                out.put("decode_tokens_per_s", round(t.decodeTokensPerSecond()));
                out.put("decode_ms_per_step", round(1000 / t.decodeStepsPerSecond()));
                long bytes = w.streamedBytes();
                out.put("weight_bytes_per_step", bytes);
                int ctx = promptTokens + genTokens / 2;
                double flops = DecodeBench.flopsPerToken(m.model(), ctx) * t.decodeTokensPerSecond();
                out.put("decode_gflops", round(flops / 1e9));
                if (!noProbes) {
                    double bw = MemoryProbes.streamReadBandwidthGBs(m.pool());
                    double peak = MemoryProbes.fmaPeakGflops(m.pool());
                    out.put("read_bandwidth_gbs", round(bw));
                    out.put("fma_peak_gflops", round(peak));
                    out.put("bandwidth_roofline_fraction", round(bytes * t.decodeStepsPerSecond() / (bw * 1e9)));
                    out.put("compute_peak_fraction", round(flops / (peak * 1e9)));
                }
                if (tl != null) {
                    Map<String, Object> l = new LinkedHashMap<>();
                    l.put("adapters", adapters);
                    l.put("rank", rank);
                    l.put("bd_nblocks", bdNblocks);
                    l.put("adapter_dtype", adapterDtype);
                    l.put("adapter_params_each", loras[0].parameters());
                    l.put("prefill_tokens_per_s", round(tl.prefillTokensPerSecond()));
                    l.put("decode_tokens_per_s", round(tl.decodeTokensPerSecond()));
                    l.put("decode_vs_base", round(tl.decodeTokensPerSecond() / t.decodeTokensPerSecond()));
                    double loraMs = 1000 * tl.loraDecodeSeconds() / tl.decodeSteps();
                    l.put("lora_ms_per_step", round(loraMs));
                    l.put("lora_bytes_per_step", (long) tl.loraBytesPerStep());
                    l.put("lora_flops_per_step", (long) tl.loraFlopsPerStep());
                    if (out.containsKey("read_bandwidth_gbs")) {
                        double bw = (double) out.get("read_bandwidth_gbs"), peak = (double) out.get("fma_peak_gflops");
                        double boundMs = 1000 * Math.max(tl.loraBytesPerStep() / (bw * 1e9), tl.loraFlopsPerStep() / (peak * 1e9));
                        l.put("lora_bound_ms_per_step", round(boundMs));
                        l.put("lora_time_vs_bound", round(loraMs / boundMs));
                    }
                    out.put("lora", l);
                }
                out.putAll(DecodeBench.environment(m.pool().parallelism()));
                System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(out));
            }
            return 0;
        }

        private static double round(double v) { return Math.round(v * 1000) / 1000.0; }

        /** N synthetic adapters written to a temporary folder and loaded through the PEFT loader. */
        private dev.bdserve.lora.LoraAdapter[] synthAdapters(ModelOptions.Loaded m) throws java.io.IOException {
            java.nio.file.Path tmp = java.nio.file.Files.createTempDirectory("bdserve-bench-adapters");
            var c = m.model().config();
            var out = new dev.bdserve.lora.LoraAdapter[adapters];
            try {
                for (int i = 0; i < adapters; i++) {
                    java.nio.file.Path d = tmp.resolve("a" + i);
                    new dev.bdserve.lora.SynthAdapter(rank, bdNblocks, dev.bdserve.lora.SynthAdapter.parseTargets(adapterTargets),
                            dev.bdserve.tensor.DType.parse(adapterDtype), rank, false, 0.3, 1000 + i).write(d, c, "bench");
                    out[i] = dev.bdserve.lora.PeftAdapterLoader.load("a" + i, d, c, Math.max(rank, 1));
                }
            } finally {
                try (var files = java.nio.file.Files.walk(tmp)) {
                    files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
            return out;
        }
    }
}
