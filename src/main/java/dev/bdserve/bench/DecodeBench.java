package dev.bdserve.bench;

import dev.bdserve.engine.BlockManager;
import dev.bdserve.engine.ModelRunner;
import dev.bdserve.engine.Sampler;
import dev.bdserve.engine.StepBatch;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.tensor.VectorWidth;

import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Static-batch prefill and decode throughput of a model runner (one rank or a TP group), with the
 * collectives and LoRA work of the decode steps, to be set against this machine's read bandwidth and
 * fp32 FMA peak measured in the same run.
 */
public final class DecodeBench {
    private final ModelRunner model;
    private final BlockManager blocks;
    private final Map<String, Long> warmedNanos = new HashMap<>();   // adapter assignment → nanoseconds of warm-up so far

    public DecodeBench(ModelRunner model) {
        this.model = model;
        this.blocks = new BlockManager(model.kvBlocks(), model.kvBlockSize());
    }

    /**
     * Settings of one run.
     *
     * @param warmupSteps   decode steps run before every timed run (at least), each at the run's batch and adapters
     * @param warmupSeconds the warm-up goes on past {@code warmupSteps} until the run's adapter assignment has been
     *                      warmed this long in this process: the JIT compiles the small LoRA kernels (48 calls per
     *                      step at 12 layers) only after thousands of calls, and until then they run several times slower
     */
    public record Settings(int batch, int promptTokens, int genTokens, int warmupSteps, double warmupSeconds, int prefillChunk, long seed) {
        public Settings {
            if (batch < 1 || promptTokens < 1 || genTokens < 1 || warmupSteps < 0 || prefillChunk < 1)
                throw new IllegalArgumentException("batch, prompt-tokens, gen-tokens and prefill chunk must be ≥ 1");
            if (!(warmupSeconds >= 0)) throw new IllegalArgumentException("warm-up seconds must be ≥ 0, got " + warmupSeconds);
        }

        /** The same run at another batch size. */
        public Settings withBatch(int b) { return new Settings(b, promptTokens, genTokens, warmupSteps, warmupSeconds, prefillChunk, seed); }
    }

    /**
     * Timings of one run.
     *
     * @param loraDecodeSeconds time inside the LoRA path during decode on rank 0
     * @param loraBytesPerStep  adapter bytes rank 0 read per decode step
     * @param loraFlopsPerStep  LoRA FLOPs rank 0 ran per decode step
     * @param heapBytesPerStep  bytes this JVM's threads allocated on the heap per decode step (-1: not measured); a
     *                          kernel whose vectors C2 left boxed shows here as megabytes per step
     * @param prefillComm       rank 0's collectives during prefill
     * @param decodeComm        rank 0's collectives during decode
     */
    public record Timing(double prefillSeconds, long prefillTokens, double decodeSeconds, int decodeSteps, int batch,
                         double loraDecodeSeconds, double loraBytesPerStep, double loraFlopsPerStep, double heapBytesPerStep,
                         CommStats prefillComm, CommStats decodeComm, double[] stepSeconds) {
        public Timing {
            if (stepSeconds.length != decodeSteps) throw new IllegalArgumentException(stepSeconds.length + " step times for " + decodeSteps + " steps");
            stepSeconds = stepSeconds.clone();
        }

        /** Each decode step's seconds, in order; in an interleaved run, step i of every strategy ran in the same round. */
        public double[] stepSeconds() { return stepSeconds.clone(); }

        public double prefillTokensPerSecond() { return prefillTokens / prefillSeconds; }
        public double decodeTokensPerSecond() { return (double) decodeSteps * batch / decodeSeconds; }
        public double decodeStepsPerSecond() { return decodeSteps / decodeSeconds; }

        /** This run and {@code o} as one: times, tokens, steps and collectives summed, per-step LoRA work averaged. */
        public Timing merge(Timing o) {
            if (o.batch != batch) throw new IllegalArgumentException("runs of batch " + batch + " and " + o.batch + " do not merge");
            int steps = decodeSteps + o.decodeSteps;
            return new Timing(prefillSeconds + o.prefillSeconds, prefillTokens + o.prefillTokens, decodeSeconds + o.decodeSeconds, steps, batch,
                    loraDecodeSeconds + o.loraDecodeSeconds, (loraBytesPerStep * decodeSteps + o.loraBytesPerStep * o.decodeSteps) / steps,
                    (loraFlopsPerStep * decodeSteps + o.loraFlopsPerStep * o.decodeSteps) / steps,
                    heapBytesPerStep < 0 || o.heapBytesPerStep < 0 ? -1 : (heapBytesPerStep * decodeSteps + o.heapBytesPerStep * o.decodeSteps) / steps,
                    prefillComm.plus(o.prefillComm), decodeComm.plus(o.decodeComm), concat(stepSeconds, o.stepSeconds));
        }

        private static double[] concat(double[] a, double[] b) {
            double[] c = Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, c, a.length, b.length);
            return c;
        }
    }

    /**
     * Median over decode steps i of num's step i time over den's: runs interleaved step by step ran their step i in the
     * same round, so these are paired samples, and the median of their ratios ignores the few steps a neighbour's burst
     * or a pause hit.
     */
    public static double medianPairedRatio(Timing num, Timing den) {
        if (num.decodeSteps() != den.decodeSteps()) throw new IllegalArgumentException("runs of " + num.decodeSteps() + " and " + den.decodeSteps() + " steps do not pair");
        double[] a = num.stepSeconds, b = den.stepSeconds, r = new double[a.length];
        for (int i = 0; i < r.length; i++) r[i] = a[i] / b[i];
        return median(r);
    }

    /** The middle value of v, or the mean of the two middle ones (v is left as it is). */
    public static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return ServeReport.percentile(s, 50);
    }

    /**
     * Prefill of {@code batch} random prompts, then greedy decode steps of the whole batch; sequence b uses
     * adapter {@code adapterIds[b % adapterIds.length]} (an empty array: base only).
     */
    public Timing run(Settings s, int[] adapterIds) {
        return runInterleaved(s, Map.of("run", adapterIds)).get("run");   // one strategy: nothing to interleave with
    }

    /**
     * As {@link #run} base-only, on the given prompts instead of random ones: {@code prompts[b]} is sequence b's, of
     * {@code s.promptTokens()} ids (so another engine can be timed on the very same tokens).
     */
    public Timing run(Settings s, int[][] prompts) {
        if (prompts.length != s.batch()) throw new IllegalArgumentException(prompts.length + " prompts for a batch of " + s.batch());
        for (int[] p : prompts)
            if (p.length != s.promptTokens()) throw new IllegalArgumentException("a prompt of " + p.length + " ids, expected " + s.promptTokens());
        return runInterleaved(s, Map.of("run", new int[0]), prompts).get("run");
    }

    /**
     * Several strategies' runs interleaved step by step, so that the slow spells of a shared host fall on all of them
     * alike: each strategy (name → adapter ids per sequence, as in {@link #run}) gets its own batch of sequences and
     * KV blocks; the batches are prefilled one after another, then every decode step runs each strategy's batch once,
     * in an order rotated by one each step. Returns each strategy's timings as {@link #run} would (its prefill, its
     * decode steps' time, LoRA work and collectives). {@link #run} is this with one strategy. The KV pool must hold all the strategies' batches at once.
     */
    public Map<String, Timing> runInterleaved(Settings s, Map<String, int[]> strategies) {
        return runInterleaved(s, strategies, null);
    }

    /** {@link #runInterleaved(Settings, Map)} on the given prompts ({@code prompts[b]}: sequence b's), or random ones when null. */
    private Map<String, Timing> runInterleaved(Settings s, Map<String, int[]> strategies, int[][] prompts) {
        LlamaConfig c = model.config();
        int vocab = c.vocabSize(), B = s.batch(), K = strategies.size();
        if (s.promptTokens() + s.genTokens() + s.warmupSteps() > c.maxPositions())
            throw new IllegalArgumentException("prompt + generated tokens exceed the context limit " + c.maxPositions());
        String[] names = strategies.keySet().toArray(String[]::new);
        int[][] ad = new int[K][B];                       // [strategy][sequence] adapter id, -1 = base
        for (int k = 0; k < K; k++) {
            int[] ids = strategies.get(names[k]);
            for (int b = 0; b < B; b++) ad[k][b] = ids.length == 0 ? -1 : ids[b % ids.length];
            warmUp(s, ad[k]);
        }
        SplittableRandom rnd = new SplittableRandom(s.seed());
        int[][][] tables = new int[K][B][];               // [strategy][sequence] KV block table
        int[][] seq = new int[K][B], next = new int[K][B];
        double[] prefill = new double[K];
        CommStats[] prefillComm = new CommStats[K];
        for (int k = 0; k < K; k++) {
            for (int b = 0; b < B; b++) { tables[k][b] = blocks.allocateTable(s.promptTokens() + s.genTokens()); seq[k][b] = b; }   // index into this batch's tables
            CommStats c0 = model.commStats().snapshot();
            long t0 = System.nanoTime();
            prefill(s, rnd, prompts, seq[k], ad[k], tables[k], next[k]);
            prefill[k] = (System.nanoTime() - t0) / 1e9;
            prefillComm[k] = model.commStats().minus(c0);
        }
        model.collectGarbage();                           // no collection pause in the timed steps (see ModelRunner)
        double[] decode = new double[K];
        double[][] stepTimes = new double[K][s.genTokens()];   // [strategy][step] seconds
        long[] loraNanos = new long[K], loraBytes = new long[K], loraFlops = new long[K], heap = new long[K];
        boolean heapKnown = allocatedBytes() >= 0;
        CommStats[] decodeComm = new CommStats[K];
        for (int k = 0; k < K; k++) decodeComm[k] = new CommStats();
        int[] rows = new int[B];
        for (int b = 0; b < B; b++) rows[b] = b;
        float[] logits = new float[B * vocab];
        LoraStats stats = model.loraStats();
        int[] pos = new int[B];
        for (int step = 0; step < s.genTokens(); step++) {
            Arrays.fill(pos, s.promptTokens() + step);
            for (int j = 0; j < K; j++) {
                int k = (j + step) % K;
                CommStats before = model.commStats().snapshot();
                stats.reset();
                long a0 = heapKnown ? allocatedBytes() : 0;
                long t0 = System.nanoTime();
                model.forward(new StepBatch(next[k].clone(), pos.clone(), seq[k], ad[k], rows, tables[k]), logits);
                for (int b = 0; b < B; b++) next[k][b] = Sampler.argmax(logits, b * vocab, vocab);
                stepTimes[k][step] = (System.nanoTime() - t0) / 1e9;
                if (heapKnown) heap[k] += allocatedBytes() - a0;
                decode[k] += stepTimes[k][step];
                decodeComm[k] = decodeComm[k].plus(model.commStats().minus(before));
                loraNanos[k] += stats.nanos();
                loraBytes[k] += stats.bytes();
                loraFlops[k] += stats.flops();
            }
        }
        Map<String, Timing> out = new LinkedHashMap<>();
        int steps = s.genTokens();
        for (int k = 0; k < K; k++) {
            for (int[] t : tables[k]) blocks.releaseTable(t);
            out.put(names[k], new Timing(prefill[k], (long) B * s.promptTokens(), decode[k], steps, B, loraNanos[k] / 1e9,
                    loraBytes[k] / (double) steps, loraFlops[k] / (double) steps, heapKnown ? heap[k] / (double) steps : -1, prefillComm[k], decodeComm[k], stepTimes[k]));
        }
        return out;
    }

    /** Heap bytes all threads of this JVM have allocated so far, or -1 where the JVM does not count them. */
    static long allocatedBytes() {
        return java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
                && t.isThreadAllocatedMemorySupported() && t.isThreadAllocatedMemoryEnabled() ? t.getTotalThreadAllocatedBytes() : -1;
    }

    /** Prefills the batch's prompts (random ones when {@code prompts} is null) in chunks; next[b] gets each sequence's first greedy token. */
    private void prefill(Settings s, SplittableRandom rnd, int[][] prompts, int[] seq, int[] ad, int[][] tables, int[] next) {
        int vocab = model.config().vocabSize(), total = seq.length * s.promptTokens();
        for (int start = 0; start < total; start += s.prefillChunk()) {
            int n = Math.min(s.prefillChunk(), total - start);
            int[] toks = new int[n], pos = new int[n], ids = new int[n], ads = new int[n], rows = new int[n];
            int nr = 0;
            for (int i = 0; i < n; i++) {
                int g = start + i, b = g / s.promptTokens(), p = g % s.promptTokens();
                toks[i] = prompts != null ? prompts[b][p] : 3 + rnd.nextInt(vocab - 3);
                pos[i] = p;
                ids[i] = seq[b];
                ads[i] = ad[b];
                if (p == s.promptTokens() - 1) rows[nr++] = i;
            }
            int[] lr = Arrays.copyOf(rows, nr);
            float[] logits = new float[nr * vocab];
            model.forward(new StepBatch(toks, pos, ids, ads, lr, tables), logits);
            for (int r = 0; r < nr; r++) next[(start + lr[r]) / s.promptTokens()] = Sampler.argmax(logits, r * vocab, vocab);
        }
    }

    /**
     * Decode steps at the run's shapes so the JIT has compiled the hot kernels before timing: at least
     * {@code warmupSteps}, and more until this adapter assignment has had {@code warmupSeconds} of warm-up in this
     * process (positions cycle through the first {@code max(1, warmupSteps)}).
     */
    private void warmUp(Settings s, int[] ad) {
        String key = Arrays.toString(ad);
        long owed = (long) (s.warmupSeconds() * 1e9) - warmedNanos.getOrDefault(key, 0L);
        if (s.warmupSteps() == 0 && owed <= 0) return;
        int vocab = model.config().vocabSize(), B = s.batch(), span = Math.max(1, s.warmupSteps());
        int[] seq = new int[B], rows = new int[B];
        int[][] tables = new int[B][];
        for (int b = 0; b < B; b++) { seq[b] = b; rows[b] = b; tables[b] = blocks.allocateTable(span); }
        float[] logits = new float[B * vocab];
        long t0 = System.nanoTime();
        for (int k = 0; k < s.warmupSteps() || System.nanoTime() - t0 < owed; k++) {
            int[] toks = new int[B], pos = new int[B];
            Arrays.fill(toks, 1 + k % (vocab - 1));
            Arrays.fill(pos, k % span);
            model.forward(new StepBatch(toks, pos, seq, ad, rows, tables), logits);
        }
        warmedNanos.merge(key, System.nanoTime() - t0, Long::sum);
        for (int[] t : tables) blocks.releaseTable(t);
        int n = Math.min(s.prefillChunk(), Math.min(64, model.config().maxPositions()));
        int[] toks = new int[n], pos = new int[n], ids = new int[n], ads = new int[n];
        for (int i = 0; i < n; i++) { toks[i] = 1; pos[i] = i; ads[i] = ad[0]; }
        int[] t = blocks.allocateTable(n);
        model.forward(new StepBatch(toks, pos, ids, ads, new int[]{n - 1}, new int[][]{t}), new float[vocab]);
        blocks.releaseTable(t);
    }

    /** FLOPs of one decoded token on one rank: 2 per weight element of its matrix products, plus attention at context {@code ctx}. */
    public static double flopsPerToken(LlamaModel m, int ctx) {
        LlamaConfig c = m.config();
        double matmul = 2.0 * m.weights().streamedParameters();
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
        env.put("vector_bits", VectorWidth.BITS);                 // the kernels' width (bdserve.vector.bits)
        env.put("host_vector_bits", VectorWidth.HOST_BITS);       // the CPU's preferred width
        return env;
    }
}
