package dev.bdserve.bench;

import dev.bdserve.engine.Sampler;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.model.KvCache;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.Step;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Static-batch prefill and decode throughput of one model rank, set against this machine's read
 * bandwidth and fp32 FMA peak measured in the same run.
 */
public final class DecodeBench {
    private final LlamaModel model;

    public DecodeBench(LlamaModel model) { this.model = model; }

    /** Settings of one run. */
    public record Settings(int batch, int promptTokens, int genTokens, int warmupSteps, int prefillChunk, long seed) {
        public Settings {
            if (batch < 1 || promptTokens < 1 || genTokens < 1 || warmupSteps < 0 || prefillChunk < 1)
                throw new IllegalArgumentException("batch, prompt-tokens, gen-tokens and prefill chunk must be ≥ 1");
        }
    }

    /**
     * Timings of one run.
     *
     * @param loraDecodeSeconds time inside the LoRA path during decode (0 without adapters)
     * @param loraBytesPerStep  adapter bytes read per decode step
     * @param loraFlopsPerStep  LoRA FLOPs per decode step
     */
    public record Timing(double prefillSeconds, long prefillTokens, double decodeSeconds, int decodeSteps, int batch,
                         double loraDecodeSeconds, double loraBytesPerStep, double loraFlopsPerStep) {
        public double prefillTokensPerSecond() { return prefillTokens / prefillSeconds; }
        public double decodeTokensPerSecond() { return (double) decodeSteps * batch / decodeSeconds; }
        public double decodeStepsPerSecond() { return decodeSteps / decodeSeconds; }
    }

    /** Runs prefill of {@code batch} random prompts, then greedy decode steps of the whole batch. */
    public Timing run(Settings s) { return run(s, null); }

    /**
     * As {@link #run(Settings)}, sequence b using {@code adapters[b % adapters.length]} (null or empty: base only).
     */
    public Timing run(Settings s, LoraAdapter[] adapters) {
        LlamaConfig c = model.config();
        int vocab = c.vocabSize();
        if (s.promptTokens() + s.genTokens() > c.maxPositions())
            throw new IllegalArgumentException("prompt + generated tokens exceed the context limit " + c.maxPositions());
        LoraAdapter[] perSeq = new LoraAdapter[s.batch()];
        boolean lora = adapters != null && adapters.length > 0;
        if (lora) for (int b = 0; b < s.batch(); b++) perSeq[b] = adapters[b % adapters.length];
        warmUp(s, lora ? perSeq : null);
        SplittableRandom rnd = new SplittableRandom(s.seed());
        KvCache[] caches = new KvCache[s.batch()];
        for (int b = 0; b < s.batch(); b++) caches[b] = model.newCache(s.promptTokens() + s.genTokens());
        LlamaModel.Workspace ws = model.newWorkspace();
        // Prefill: all prompts' tokens, in steps of at most prefillChunk tokens.
        int total = s.batch() * s.promptTokens();
        int[] next = new int[s.batch()];
        long t0 = System.nanoTime();
        for (int start = 0; start < total; start += s.prefillChunk()) {
            int n = Math.min(s.prefillChunk(), total - start);
            int[] toks = new int[n], pos = new int[n];
            KvCache[] cs = new KvCache[n];
            int[] rows = new int[n];
            LoraAdapter[] ad = lora ? new LoraAdapter[n] : null;
            int nr = 0;
            for (int i = 0; i < n; i++) {
                int g = start + i, b = g / s.promptTokens(), p = g % s.promptTokens();
                toks[i] = 3 + rnd.nextInt(vocab - 3);
                pos[i] = p;
                cs[i] = caches[b];
                if (lora) ad[i] = perSeq[b];
                if (p == s.promptTokens() - 1) rows[nr++] = i;
            }
            int[] lr = Arrays.copyOf(rows, nr);
            float[] logits = new float[nr * vocab];
            model.forward(new Step(toks, pos, cs, lr, ad), ws, logits);
            for (int r = 0; r < nr; r++) next[(start + lr[r]) / s.promptTokens()] = Sampler.argmax(logits, r * vocab, vocab);
        }
        double prefill = (System.nanoTime() - t0) / 1e9;
        // Decode: one token per sequence per step.
        int B = s.batch();
        int[] rows = new int[B];
        for (int b = 0; b < B; b++) rows[b] = b;
        float[] logits = new float[B * vocab];
        LoraStats stats = ws.loraStats();
        stats.reset();
        long t1 = System.nanoTime();
        for (int k = 0; k < s.genTokens(); k++) {
            int[] pos = new int[B];
            Arrays.fill(pos, s.promptTokens() + k);
            model.forward(new Step(next.clone(), pos, caches, rows, lora ? perSeq : null), ws, logits);
            for (int b = 0; b < B; b++) next[b] = Sampler.argmax(logits, b * vocab, vocab);
        }
        double decode = (System.nanoTime() - t1) / 1e9;
        int steps = s.genTokens();
        return new Timing(prefill, total, decode, steps, B, stats.nanos() / 1e9,
                stats.bytes() / (double) steps, stats.flops() / (double) steps);
    }

    /** A few steps at the run's shapes so the JIT has compiled the hot kernels before timing. */
    private void warmUp(Settings s, LoraAdapter[] perSeq) {
        if (s.warmupSteps() == 0) return;
        LlamaModel.Workspace ws = model.newWorkspace();
        int vocab = model.config().vocabSize();
        KvCache[] caches = new KvCache[s.batch()];
        for (int b = 0; b < s.batch(); b++) caches[b] = model.newCache(s.warmupSteps() + 1);
        int[] rows = new int[s.batch()];
        for (int b = 0; b < s.batch(); b++) rows[b] = b;
        float[] logits = new float[s.batch() * vocab];
        for (int k = 0; k < s.warmupSteps(); k++) {
            int[] toks = new int[s.batch()], pos = new int[s.batch()];
            Arrays.fill(toks, 1 + k % (vocab - 1));
            Arrays.fill(pos, k);
            model.forward(new Step(toks, pos, caches, rows, perSeq), ws, logits);
        }
        int n = Math.min(s.prefillChunk(), Math.min(64, model.config().maxPositions()));
        KvCache c = model.newCache(n);
        int[] toks = new int[n];
        Arrays.fill(toks, 1);
        model.forward(Step.ofSequence(c, toks, 0, false, perSeq == null ? null : perSeq[0]), ws, new float[vocab]);
    }

    /** FLOPs of one decoded token: 2 per weight element of the matrix products, plus attention at context {@code ctx}. */
    public static double flopsPerToken(LlamaModel m, int ctx) {
        LlamaConfig c = m.config();
        double matmul = 2.0 * m.weights().streamedBytes() / m.weights().lmHead().dtype().bytes();
        double attention = 4.0 * c.numLayers() * (double) ctx * c.qDim() / m.weights().shard().size();
        return matmul + attention;
    }

    /** The JSON fields every benchmark prints about the machine and JVM. */
    public static Map<String, Object> environment(int threads) {
        Map<String, Object> env = new LinkedHashMap<>();
        env.put("jvm", System.getProperty("java.vm.name") + " " + Runtime.version());
        env.put("os_arch", System.getProperty("os.arch"));
        env.put("cores", Runtime.getRuntime().availableProcessors());
        env.put("threads", threads);
        env.put("vector_bits", jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize());
        return env;
    }
}
