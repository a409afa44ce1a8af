package dev.bdserve.cli;

import dev.bdserve.bench.DecodeBench;
import dev.bdserve.bench.Figures;
import dev.bdserve.engine.Engine;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.EngineException;
import dev.bdserve.engine.EngineRequest;
import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.RequestListener;
import dev.bdserve.engine.RequestResult;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TokenEvent;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@code ./bdserve bench throughput}: offline throughput through the engine API, in the convention of
 * vLLM's {@code bench throughput} (all requests submitted at once, random prompts, fixed output length),
 * optionally set against the same workload run as one static batch.
 */
@Command(name = "throughput", mixinStandardHelpOptions = true,
        description = "Offline throughput through the serving engine (vLLM's bench throughput convention).")
final class ThroughputCommand implements java.util.concurrent.Callable<Integer> {
    @Mixin ModelOptions modelOptions;
    @Option(names = "--num-prompts", defaultValue = "64") int numPrompts;
    @Option(names = "--input-len", defaultValue = "128") int inputLen;
    @Option(names = "--output-len", defaultValue = "128") int outputLen;
    @Option(names = "--adapters", defaultValue = "0", description = "Spread requests over N synthetic adapters (round-robin).") int adapters;
    @Option(names = "--rank", defaultValue = "16") int rank;
    @Option(names = "--bd-nblocks", defaultValue = "0") int bdNblocks;
    @Option(names = "--adapter-dtype", defaultValue = "bf16") String adapterDtype;
    @Option(names = "--max-num-seqs", defaultValue = "256") int maxNumSeqs;
    @Option(names = "--max-num-batched-tokens", defaultValue = "2048") int maxBatchedTokens;
    @Option(names = "--max-loras", defaultValue = "8") int maxLoras;
    @Option(names = "--kv-cache-gb", defaultValue = "2") double kvGb;
    @Option(names = "--compare-static", description = "Also run the workload as one static batch and report the ratio.") boolean compareStatic;
    @Option(names = "--seed", defaultValue = "0") long seed;
    @Option(names = "--json", description = "Print JSON (the default).") boolean json;

    @Override
    public Integer call() throws Exception {
        long kvBytes = (long) (kvGb * (1L << 30));
        ModelOptions.Loaded m = modelOptions.load(kvBytes);
        try (m) {
            TpGroup g = m.runner();
            LlamaConfig c = g.config();
            SplittableRandom r = new SplittableRandom(seed);
            int[][] prompts = new int[numPrompts][inputLen];
            for (int[] p : prompts) for (int i = 0; i < inputLen; i++) p[i] = 3 + r.nextInt(c.vocabSize() - 3);
            SamplingParams sp = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
            Path tmp = Files.createTempDirectory("bdserve-throughput");
            Map<String, Object> out = new LinkedHashMap<>();
            try {
                String[] names = new String[Math.max(adapters, 0)];
                for (int i = 0; i < adapters; i++) {
                    Path d = tmp.resolve("a" + i);
                    new SynthAdapter(rank, bdNblocks, SynthAdapter.allModules(), DType.parse(adapterDtype), rank, false, 0.3, 500 + i).write(d, c, "bench");
                    names[i] = "a" + i;
                }
                double engineSeconds;
                try (Engine e = new Engine(g, m.tokenizer(), new EngineConfig(maxNumSeqs, maxBatchedTokens, maxLoras,
                        Math.max(maxLoras, adapters), Math.max(rank, 1), kvBytes, g.kvBlockSize(), numPrompts + 16, false))) {
                    for (int i = 0; i < adapters; i++) e.registerAdapter(names[i], tmp.resolve(names[i]), false);
                    run(e, prompts, names, sp, Math.min(numPrompts, 4), outputLen); // warm-up
                    long t0 = System.nanoTime();
                    run(e, prompts, names, sp, numPrompts, outputLen);
                    engineSeconds = (System.nanoTime() - t0) / 1e9;
                    out.put("preemptions", e.stats().preemptions());
                }
                long totalTokens = (long) numPrompts * (inputLen + outputLen);
                out.put("model", m.path().toString());
                out.put("tp", g.tpSize());
                out.put("kernels", g.kernels());
                out.put("num_requests", numPrompts);
                out.put("input_len", inputLen);
                out.put("output_len", outputLen);
                out.put("adapters", adapters);
                out.put("elapsed_time", engineSeconds);
                out.put("requests_per_second", numPrompts / engineSeconds);
                out.put("tokens_per_second", totalTokens / engineSeconds);
                out.put("output_tokens_per_second", (double) numPrompts * outputLen / engineSeconds);
                out.put("total_num_tokens", totalTokens);
                if (compareStatic) {
                    int[] ids = new int[adapters];
                    for (int j = 0; j < adapters; j++)
                        ids[j] = g.addAdapter(PeftAdapterLoader.load(names[j] + "-static", tmp.resolve(names[j]), c, Math.max(rank, 1)));
                    List<GenerationRequest> reqs = new ArrayList<>();
                    for (int i = 0; i < numPrompts; i++)
                        reqs.add(new GenerationRequest(prompts[i], outputLen, sp, adapters == 0 ? -1 : ids[i % adapters]));
                    Generator gen = new Generator(g, m.tokenizer(), maxBatchedTokens);
                    long t0 = System.nanoTime();
                    gen.generate(reqs, null);
                    double staticSeconds = (System.nanoTime() - t0) / 1e9;
                    out.put("static_batch_elapsed_time", staticSeconds);
                    out.put("engine_vs_static_batch", staticSeconds / engineSeconds);
                }
            } finally {
                try (var files = Files.walk(tmp)) { files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete()); }
            }
            out.putAll(DecodeBench.environment(m.threads()));
            System.out.println(Figures.json(out));
        }
        return 0;
    }

    /**
     * Submits the first {@code n} prompts at once (prompt i on adapter {@code names[i % names.length]}, none when
     * {@code names} is empty), {@code outputLen} tokens each, and returns when every one has finished.
     */
    static void run(Engine e, int[][] prompts, String[] names, SamplingParams sp, int n, int outputLen) throws Exception {
        List<CompletableFuture<RequestResult>> fs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            CompletableFuture<RequestResult> f = new CompletableFuture<>();
            e.submit(new EngineRequest("b" + i, prompts[i], names.length == 0 ? null : names[i % names.length], sp, outputLen), new RequestListener() {
                public void onToken(TokenEvent ev) {}
                public void onFinish(RequestResult res) { f.complete(res); }
                public void onError(EngineException ex) { f.completeExceptionally(ex); }
            });
            fs.add(f);
        }
        for (CompletableFuture<RequestResult> f : fs) f.get(1, TimeUnit.HOURS);
    }
}
