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

        @Override
        public Integer call() throws Exception {
            try (ModelOptions.Loaded m = modelOptions.load()) {
                var w = m.model().weights();
                DecodeBench bench = new DecodeBench(m.model());
                DecodeBench.Timing t = bench.run(new DecodeBench.Settings(batch, promptTokens, genTokens, warmup, prefillChunk, seed));
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
                out.putAll(DecodeBench.environment(m.pool().parallelism()));
                System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(out));
            }
            return 0;
        }

        private static double round(double v) { return Math.round(v * 1000) / 1000.0; }
    }
}
