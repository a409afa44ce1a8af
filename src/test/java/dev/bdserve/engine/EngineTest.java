package dev.bdserve.engine;

import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The serving engine against static batches: continuous batching, preemption, prefix caching, adapters, errors. */
class EngineTest {
    /** Context 2048 for prompts up to 1024 tokens; tiny widths so that CI stays fast. */
    static final LlamaConfig C = new LlamaConfig(300, 64, 128, 2, 4, 2, 16, 2048, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    @TempDir Path dir;

    /** A tokenizer over ids only (the engine needs decoding for stop strings; these tests compare ids). */
    static final Tokenizer IDS = new Tokenizer() {
        public int vocabSize() { return C.vocabSize(); }
        public int bosId() { return 1; }
        public int[] eosIds() { return new int[]{2}; }
        public int[] encode(String text, boolean addBos) { throw new UnsupportedOperationException(); }
        public String decode(int[] ids) { StringBuilder b = new StringBuilder(); for (int i : ids) b.append('<').append(i).append('>'); return b.toString(); }
        public StreamDecoder newStreamDecoder() {
            return new StreamDecoder() {
                public String push(int id) { return "<" + id + ">"; }
                public String flush() { return ""; }
            };
        }
    };

    static TpGroup group(int tp, long kvBytes) {
        return TpGroup.threads(() -> new SynthModel(C, DType.F32, 31),
                new TpGroup.Options(tp, tp == 1 ? 2 : 1, LoraSharding.AUTO, LoraSharding.SLORA, 0).withKvCache(kvBytes, 16));
    }

    static EngineConfig cfg(int maxSeqs, int budget, int maxLoras, int maxCpuLoras) {
        return new EngineConfig(maxSeqs, budget, maxLoras, maxCpuLoras, 64, 1L << 30, 16, 10_000, true);
    }

    /** Collects a request's output. */
    static final class Collector implements RequestListener {
        final CompletableFuture<RequestResult> done = new CompletableFuture<>();
        final List<Integer> streamed = new ArrayList<>();
        final java.util.concurrent.CountDownLatch firstToken = new java.util.concurrent.CountDownLatch(1);
        final List<String> streamedText = new ArrayList<>();
        public void onToken(TokenEvent e) {
            if (e.token() >= 0) streamed.add(e.token());
            streamedText.add(e.text());
            firstToken.countDown();
        }
        public void onFinish(RequestResult r) { done.complete(r); }
        public void onError(EngineException e) { done.completeExceptionally(e); }
        RequestResult get() throws Exception { return done.get(120, TimeUnit.SECONDS); }
    }

    record Req(int[] prompt, String adapter, int maxTokens) {}

    List<Req> workload(int n, int maxPrompt, String[] adapterNames, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Req> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = i < 2 ? (i == 0 ? 1 : maxPrompt) : 1 + r.nextInt(maxPrompt);
            int[] p = new int[len];
            for (int k = 0; k < len; k++) p[k] = 3 + r.nextInt(C.vocabSize() - 3);
            String a = adapterNames[i % adapterNames.length];
            out.add(new Req(p, a, 4 + r.nextInt(12)));
        }
        return out;
    }

    String[] adapters(Engine e, int n) {
        String[] names = new String[n + 1];
        for (int i = 0; i < n; i++) {
            Path p = dir.resolve("a" + i);
            new SynthAdapter(new int[]{4, 8, 16, 6}[i % 4], i % 3 == 1 ? 2 : 0, SynthAdapter.allModules(), i % 2 == 0 ? DType.F32 : DType.BF16,
                    8, false, 0.3, 40 + i).write(p, C, "test");
            e.registerAdapter("a" + i, p, false);
            names[i] = "a" + i;
        }
        names[n] = null; // the base model
        return names;
    }

    /** Each request run alone, greedy, in a static batch of one on a fresh group. */
    List<int[]> alone(int tp, List<Req> reqs) {
        List<int[]> out = new ArrayList<>();
        try (TpGroup g = group(tp, 64L << 20)) {
            java.util.Map<String, Integer> ids = new java.util.HashMap<>();
            Generator gen = new Generator(g, IDS, 512);
            for (Req q : reqs) {
                int aid = -1;
                if (q.adapter() != null)
                    aid = ids.computeIfAbsent(q.adapter(), n -> g.addAdapter(PeftAdapterLoader.load(n, dir.resolve(n), C, 64)));
                var res = gen.generate(List.of(new GenerationRequest(q.prompt(), q.maxTokens(), SamplingParams.greedy(), aid)), null);
                out.add(res.get(0).tokens());
            }
        }
        return out;
    }

    /** Submits requests at random times, returns their results in order. */
    static List<RequestResult> serve(Engine e, List<Req> reqs, long seed) throws Exception {
        return collect(submit(e, reqs, 0, seed));
    }

    /** Submits requests named r{first}, r{first+1}, … at random times (seeded); returns their collectors in order. */
    static List<Collector> submit(Engine e, List<Req> reqs, int first, long seed) throws InterruptedException {
        SplittableRandom r = new SplittableRandom(seed);
        List<Collector> cs = new ArrayList<>();
        int i = first;
        for (Req q : reqs) {
            Collector c = new Collector();
            e.submit(new EngineRequest("r" + i++, q.prompt(), q.adapter(), SamplingParams.greedy(), q.maxTokens()), c);
            cs.add(c);
            if (r.nextInt(3) == 0) Thread.sleep(r.nextInt(4));
        }
        return cs;
    }

    /** Each request's result, checked against what it streamed. */
    static List<RequestResult> collect(List<Collector> cs) throws Exception {
        List<RequestResult> out = new ArrayList<>();
        for (Collector c : cs) {
            RequestResult res = c.get();
            assertArrayEquals(res.tokens(), c.streamed.stream().mapToInt(Integer::intValue).toArray(), "streamed tokens equal the result");
            out.add(res);
        }
        return out;
    }

    static void assertSameOutputs(List<int[]> expected, List<RequestResult> got) {
        for (int i = 0; i < expected.size(); i++)
            assertArrayEquals(expected.get(i), got.get(i).tokens(), "request " + i);
    }

    @ParameterizedTest(name = "TP {0}")
    @ValueSource(ints = {1, 2})
    void continuousBatchingEqualsRunningAlone(int tp) throws Exception {
        List<Req> reqs;
        List<RequestResult> got;
        try (TpGroup g = group(tp, 64L << 20); Engine e = new Engine(g, IDS, cfg(16, 256, 4, 6))) {
            String[] names = adapters(e, 8);
            reqs = workload(64, 1024, names, 5);
            got = serve(e, reqs, 9);
            EngineStats st = e.stats();
            assertEquals(64L, st.requestsFinished().values().stream().mapToLong(Long::longValue).sum());
            assertTrue(st.residentAdapters() <= 6, "max_cpu_loras holds");
        }
        assertSameOutputs(alone(tp, reqs), got);
    }

    /** Penalties, stop strings and logprobs through the engine equal the static generator's: both use one OutputProcessor. */
    @Test
    void theEngineAndTheStaticGeneratorShareTheirOutputRules() throws Exception {
        SamplingParams p = new SamplingParams(0, 0, 1, 0, null, List.of("<9>"), true, 0.4, 0.3, 2);
        int[] prompt = {5, 6, 7, 8, 9};
        GenerationResult want;
        try (TpGroup g = group(1, 64L << 20)) {
            want = new Generator(g, IDS, 64).generate(List.of(new GenerationRequest(prompt, 40, p, -1)), null).getFirst();
        }
        try (TpGroup g = group(1, 64L << 20); Engine e = new Engine(g, IDS, cfg(4, 256, 2, 2))) {
            Collector c = new Collector();
            e.submit(new EngineRequest("pen", prompt, null, p, 40), c);
            RequestResult got = c.get();
            assertArrayEquals(want.tokens(), got.tokens());
            assertEquals(want.text(), got.text());
            assertEquals(want.finishReason(), got.finishReason());
        }
        // and the penalties change the greedy output here (so the comparison above covers them)
        try (TpGroup g = group(1, 64L << 20)) {
            GenerationResult plain = new Generator(g, IDS, 64).generate(List.of(new GenerationRequest(prompt, 40,
                    new SamplingParams(0, 0, 1, 0, null, List.of("<9>"), true), -1)), null).getFirst();
            assertFalse(java.util.Arrays.equals(plain.tokens(), want.tokens()), "penalties had no effect");
        }
    }

    /**
     * 40 KV blocks for 24 requests of up to 215 positions. The first step holds until every request is queued, so the
     * requests contend for the pool on any host (unheld, a fast host finished each before the next arrived).
     */
    @Test
    void preemptionUnderASmallKvBudgetKeepsOutputsCorrectAndStarvesNoOne() throws Exception {
        List<Req> reqs = workload(24, 200, new String[]{null}, 11);
        long blockBytes = 2L * C.numLayers() * 16 * C.kvDim() * 4;
        CountDownLatch inStep = new CountDownLatch(1), release = new CountDownLatch(1);
        List<RequestResult> got;
        long pre;
        long t0 = System.nanoTime();
        try (TpGroup g = group(1, 40 * blockBytes)) {
            ModelRunner held = new ForwardingRunner(g) {
                @Override public void forward(StepBatch b, float[] logits) {
                    inStep.countDown();
                    try { release.await(); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); }
                    super.forward(b, logits);
                }
            };
            try (Engine e = new Engine(held, IDS, cfg(24, 512, 4, 4))) {
                List<Collector> cs = new ArrayList<>(submit(e, reqs.subList(0, 1), 0, 3));
                assertTrue(inStep.await(60, TimeUnit.SECONDS), "the first step started");
                cs.addAll(submit(e, reqs.subList(1, reqs.size()), 1, 3));
                release.countDown();
                got = collect(cs);
                pre = e.stats().preemptions();
            }
        }
        assertTrue(pre > 0, "the budget forces preemption");
        assertTrue(System.nanoTime() - t0 < 120_000_000_000L, "every request finished in bounded time");
        assertSameOutputs(alone(1, reqs), got);
    }

    @Test
    void sharedPrefixIsComputedOnceAndNeverAcrossAdapters() throws Exception {
        try (TpGroup g = group(1, 64L << 20); Engine e = new Engine(g, IDS, cfg(64, 2048, 4, 4))) {
            String[] names = adapters(e, 2);
            SplittableRandom r = new SplittableRandom(1);
            int[] prefix = new int[512];
            for (int i = 0; i < 512; i++) prefix[i] = 3 + r.nextInt(290);
            List<Req> reqs = new ArrayList<>();
            for (int i = 0; i < 32; i++) {
                int[] p = java.util.Arrays.copyOf(prefix, 520);
                for (int k = 512; k < 520; k++) p[k] = 3 + r.nextInt(290);
                reqs.add(new Req(p, names[0], 3));
            }
            // First one alone, so that its blocks are cached; then the other 31 at once.
            serve(e, reqs.subList(0, 1), 1);
            long promptBefore = e.stats().promptTokens();
            List<RequestResult> rest = serve(e, reqs.subList(1, 32), 2);
            long computed = e.stats().promptTokens() - promptBefore;
            assertEquals(31L * 8, computed, "only each request's own 8-token suffix is computed");
            for (RequestResult res : rest) assertEquals(512, res.metrics().cachedPromptTokens());
            // The same prefix under another adapter, and under the base model, shares nothing.
            RequestResult other = serve(e, List.of(new Req(reqs.get(0).prompt(), names[1], 3)), 4).get(0);
            RequestResult base = serve(e, List.of(new Req(reqs.get(0).prompt(), null, 3)), 5).get(0);
            assertEquals(0, other.metrics().cachedPromptTokens());
            assertEquals(0, base.metrics().cachedPromptTokens());
            // And the cached path gives the same tokens as computing from scratch.
            List<int[]> ref = alone(1, List.of(reqs.get(5)));
            assertArrayEquals(ref.get(0), rest.get(4).tokens());
        }
    }

    @Test
    void aLostRankFailsEveryRequestInFlightWith503() throws Exception {
        try (TpGroup g = group(2, 8L << 20); Engine e = new Engine(g, IDS, cfg(8, 256, 2, 2))) {
            List<Collector> cs = new ArrayList<>();
            SamplingParams forever = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
            for (int i = 0; i < 4; i++) {
                Collector c = new Collector();
                e.submit(new EngineRequest("f" + i, new int[]{5, 6, 7}, null, forever, 1500), c);
                cs.add(c);
            }
            for (Collector c : cs) assertTrue(c.firstToken.await(60, TimeUnit.SECONDS), "every request runs");
            g.failRank(1, "killed by the test");
            for (Collector c : cs) {
                var ex = assertThrows(java.util.concurrent.ExecutionException.class, c::get);
                EngineException ee = (EngineException) ex.getCause();
                assertEquals(503, ee.status());
                assertTrue(ee.getMessage().contains("rank 1 failed: killed by the test"), ee.getMessage());
                assertTrue(c.streamed.size() < 1500, "failed at once, not after running to its length: " + c.streamed.size());
            }
            assertFalse(e.healthy());
            assertEquals(503, assertThrows(EngineException.class, () -> e.submit(new EngineRequest("late", new int[]{5}, null, null, 2), new Collector())).status());
        }
    }

    @Test
    void errorsCancellationAndAdapterLifecycle() throws Exception {
        try (TpGroup g = group(1, 8L << 20); Engine e = new Engine(g, IDS, new EngineConfig(4, 64, 2, 2, 64, 1L << 30, 16, 3, true))) {
            String[] names = adapters(e, 1);
            EngineException nf = assertThrows(EngineException.class, () -> e.submit(new EngineRequest("x", new int[]{5}, "nope", null, 4), new Collector()));
            assertEquals(404, nf.status());
            assertEquals("The model `nope` does not exist.", nf.getMessage());
            EngineException tooLong = assertThrows(EngineException.class, () -> e.submit(new EngineRequest("x", new int[2040], null, null, 20), new Collector()));
            assertEquals(400, tooLong.status());
            assertTrue(tooLong.getMessage().startsWith("This model's maximum context length is 2048 tokens. However, you requested 2060 tokens"), tooLong.getMessage());
            EngineException dup = assertThrows(EngineException.class, () -> e.registerAdapter(names[0], dir.resolve("a0"), false));
            assertEquals(400, dup.status());
            // Cancel a long request: it ends with "abort" and its blocks are freed.
            Collector c = new Collector();
            RequestHandle h = e.submit(new EngineRequest("long", new int[]{5, 6, 7}, null, new SamplingParams(0, 0, 1, 0, null, List.of(), true), 1500), c);
            assertTrue(c.firstToken.await(60, TimeUnit.SECONDS), "the request runs");
            h.cancel();
            RequestResult aborted = c.get();
            assertEquals("abort", aborted.finishReason());
            assertTrue(aborted.tokens().length < 1500, "cancelled before its length: " + aborted.tokens().length);
            long until = System.nanoTime() + 30_000_000_000L;   // the stats are published once per step
            while (e.stats().kvUsage() != 0 && System.nanoTime() < until) Thread.sleep(2);
            assertEquals(0.0, e.stats().kvUsage(), 1e-9);
            // Unregistering refuses new requests at once and lets nothing hang.
            e.unregisterAdapter(names[0], Duration.ofSeconds(5));
            assertEquals(404, assertThrows(EngineException.class,
                    () -> e.submit(new EngineRequest("y", new int[]{5}, names[0], null, 2), new Collector())).status());
            // A queue bound: 4 running + 3 waiting at most.
            List<Collector> many = new ArrayList<>();
            int refused = 0;
            for (int i = 0; i < 20; i++) {
                try {
                    Collector m = new Collector();
                    e.submit(new EngineRequest("q" + i, new int[]{5, 6}, null, new SamplingParams(0, 0, 1, 0, null, List.of(), true), 200), m);
                    many.add(m);
                } catch (EngineException ex) {
                    assertEquals(429, ex.status());
                    refused++;
                }
            }
            assertTrue(refused > 0, "a full queue answers 429");
            for (Collector m : many) assertEquals("length", m.get().finishReason());
        }
    }
}
