package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * No single request or adapter stops the engine: a poisoned request fails alone, a failed step fails its own
 * requests, an adapter that cannot run is refused at registration, a loader that throws an Error fails only the
 * requests waiting for it.
 */
class EngineFaultTest {
    static final LlamaConfig C = EngineTest.C;
    /** The tokenizer knows 20 ids fewer than the model's 300 rows, as real checkpoints pad their vocabulary; id 100 is unused. */
    static final int UNUSED = 100;
    static final int TOKEN_VOCAB = C.vocabSize() - 20;
    static final Tokenizer IDS = ids(TOKEN_VOCAB);
    static final SamplingParams GREEDY = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
    @TempDir Path dir;

    static Tokenizer ids(int vocab) {
        return new Tokenizer() {
            public int vocabSize() { return vocab; }
            public int bosId() { return 1; }
            public int[] eosIds() { return new int[]{2}; }
            public int[] encode(String text, boolean addBos) { throw new UnsupportedOperationException(); }
            public java.util.BitSet unusedIds() {
                java.util.BitSet b = new java.util.BitSet();
                if (vocab == TOKEN_VOCAB) b.set(UNUSED);
                return b;
            }
            public String decode(int[] ids) {
                StringBuilder b = new StringBuilder();
                for (int i : ids) b.append(push(i));
                return b.toString();
            }
            public StreamDecoder newStreamDecoder() {
                return new StreamDecoder() {
                    public String push(int id) { return EngineFaultTest.push(id); }
                    public String flush() { return ""; }
                };
            }
        };
    }

    /** Decodes like a real tokenizer: an id it does not know is an error. */
    static String push(int id) {
        if (id < 0 || id >= TOKEN_VOCAB) throw new IllegalArgumentException("token id " + id + " outside the tokenizer's " + TOKEN_VOCAB);
        return "<" + id + ">";
    }

    static TpGroup group(int tp, LoraSharding sharding) {
        return TpGroup.threads(() -> new SynthModel(C, DType.F32, 31),
                new TpGroup.Options(tp, tp == 1 ? 2 : 1, sharding, LoraSharding.SLORA, 0).withKvCache(64L << 20, 16));
    }

    static EngineConfig cfg(int maxCpuLoras) {
        return new EngineConfig(32, 512, Math.min(8, maxCpuLoras), maxCpuLoras, 64, 1L << 30, 16, 10_000, true);
    }

    Path adapter(String name, int nblocks, long seed) {
        Path p = dir.resolve(name);
        new SynthAdapter(8, nblocks, SynthAdapter.allModules(), DType.F32, 8, false, 0.3, seed).write(p, C, "test");
        return p;
    }

    static EngineRequest req(String id, String adapter, SamplingParams sp, int maxTokens) {
        return new EngineRequest(id, new int[]{5, 6, 7, 8}, adapter, sp, maxTokens);
    }

    static int[] run(Engine e, EngineRequest r) throws Exception {
        EngineTest.Collector c = new EngineTest.Collector();
        e.submit(r, c);
        return c.get().tokens();
    }

    static EngineException failure(EngineTest.Collector c) {
        ExecutionException ex = assertThrows(ExecutionException.class, c::get);
        return assertInstanceOf(EngineException.class, ex.getCause());
    }

    /**
     * 16 concurrent greedy streams over 4 adapters while poisoned requests arrive: every healthy stream gets exactly
     * the tokens it gets alone; NaN, +Inf and all −Inf rows fail their own request (500, under greedy, top-p and min-p
     * sampling); the padded ids are never sampled; the engine stays healthy and serves on.
     */
    @Test
    void poisonedRequestsFailAloneAndHealthyStreamsKeepTheirText() throws Exception {
        try (TpGroup g = group(2, LoraSharding.AUTO); PoisonRunner pr = new PoisonRunner(g); Engine e = new Engine(pr, IDS, cfg(16))) {
            String[] healthy = {"a0", "a1", "a2", "a3"};
            for (int i = 0; i < 4; i++) e.registerAdapter(healthy[i], adapter(healthy[i], i % 2 == 0 ? 0 : 2, 40 + i), false);
            for (String k : List.of("nan", "inf", "dead", "pad")) e.registerAdapter("poison-" + k, adapter("poison-" + k, 0, 7), false);

            List<EngineRequest> streams = new ArrayList<>();
            for (int i = 0; i < 16; i++) streams.add(req("h" + i, healthy[i % 4], GREEDY, 12 + i));
            List<int[]> alone = new ArrayList<>();
            List<String> aloneText = new ArrayList<>();
            for (EngineRequest r : streams) {
                EngineTest.Collector c = new EngineTest.Collector();
                e.submit(r, c);
                RequestResult res = c.get();
                alone.add(res.tokens());
                aloneText.add(res.text());
            }

            SamplingParams topP = new SamplingParams(0.8, 0, 0.9, 0, 1L, List.of(), true);
            SamplingParams minP = new SamplingParams(1.0, 0, 1, 0.05, 2L, List.of(), true);
            List<EngineTest.Collector> got = new ArrayList<>(), poisoned = new ArrayList<>();
            List<String> poisonKinds = new ArrayList<>();
            EngineTest.Collector pad = null;
            int p = 0;
            for (int i = 0; i < 16; i++) {
                EngineTest.Collector c = new EngineTest.Collector();
                e.submit(streams.get(i), c);
                got.add(c);
                if (i % 3 == 0) {                          // poisoned requests arrive among the healthy ones
                    String kind = List.of("nan", "inf", "dead").get(p % 3);
                    SamplingParams sp = List.of(GREEDY, topP, minP).get(p / 3 % 3);
                    EngineTest.Collector bad = new EngineTest.Collector();
                    e.submit(req("p" + p, "poison-" + kind, sp, 30), bad);
                    poisoned.add(bad);
                    poisonKinds.add(kind + " " + sp);
                    p++;
                }
                if (i == 8) e.submit(req("pad", "poison-pad", topP, 30), pad = new EngineTest.Collector());
            }
            for (int i = 0; i < 16; i++) {
                RequestResult res = got.get(i).get();
                assertArrayEquals(alone.get(i), res.tokens(), "healthy stream " + i);
                assertEquals(aloneText.get(i), res.text(), "healthy stream " + i);
                assertEquals(aloneText.get(i), String.join("", got.get(i).streamedText), "healthy stream " + i + " as streamed");
            }
            for (int i = 0; i < poisoned.size(); i++) {
                EngineException ex = failure(poisoned.get(i));
                assertEquals(500, ex.status(), poisonKinds.get(i));
                assertTrue(ex.getMessage().contains("failed while sampling its next token (after 3 generated tokens)"), ex.getMessage());
                assertTrue(ex.getMessage().contains(poisonKinds.get(i).startsWith("nan") ? "NaN at token id 17"
                        : poisonKinds.get(i).startsWith("inf") ? "Infinity at token id 5" : "no token can be sampled"), ex.getMessage());
            }
            RequestResult padded = pad.get();
            assertEquals(30, padded.tokens().length);
            for (int t : padded.tokens()) assertTrue(t < TOKEN_VOCAB && t != UNUSED, "sampled id " + t + " past the tokenizer's vocabulary or unused");
            assertTrue(e.healthy());
            assertArrayEquals(alone.get(3), run(e, streams.get(3)), "served on afterwards");
            assertEquals((long) poisoned.size(), e.stats().requestsFinished().get("error"));
        }
    }

    /** A forward pass that throws fails the requests of that step; the loop steps on and later requests are served. */
    @Test
    void aFailedStepFailsItsRequestsAndTheEngineStepsOn() throws Exception {
        try (TpGroup g = group(1, LoraSharding.AUTO); PoisonRunner pr = new PoisonRunner(g); Engine e = new Engine(pr, IDS, cfg(8))) {
            e.registerAdapter("poison-throw", adapter("poison-throw", 0, 3), false);
            int[] want = run(e, req("ref", null, GREEDY, 10));
            EngineTest.Collector bad = new EngineTest.Collector();
            e.submit(req("bad", "poison-throw", GREEDY, 10), bad);
            EngineException ex = failure(bad);
            assertEquals(500, ex.status());
            assertTrue(ex.getMessage().contains("Internal error in a model step: the test runner's forward pass broke"), ex.getMessage());
            assertTrue(e.healthy());
            assertArrayEquals(want, run(e, req("after", null, GREEDY, 10)));
            long until = System.nanoTime() + 30_000_000_000L;   // the stats are published once per step
            while (e.stats().kvUsage() != 0 && System.nanoTime() < until) Thread.sleep(2);
            assertEquals(0.0, e.stats().kvUsage(), 1e-9, "the failed request's blocks are freed");
        }
    }

    /** A dense adapter under bdlora at TP 2 is refused at registration, naming it, the reason and the fix. */
    @Test
    void anAdapterThatCannotRunIsRefusedAtRegistration() throws Exception {
        try (TpGroup g = group(2, LoraSharding.BDLORA); Engine e = new Engine(g, IDS, cfg(8))) {
            EngineException ex = assertThrows(EngineException.class, () -> e.registerAdapter("dense", adapter("dense", 0, 1), false));
            assertEquals(400, ex.status());
            for (String part : List.of("'dense'", "cannot use bdlora sharding at TP 2", "not a BD-LoRA adapter",
                    "--lora-sharding auto --lora-fallback replicated (or slora)"))
                assertTrue(ex.getMessage().contains(part), part + " in: " + ex.getMessage());
            assertEquals(404, assertThrows(EngineException.class, () -> e.submit(req("x", "dense", GREEDY, 4), new EngineTest.Collector())).status());
            e.registerAdapter("bd", adapter("bd", 2, 2), false);    // a BD adapter that fits is served
            assertEquals(4, run(e, req("y", "bd", GREEDY, 4)).length);
            assertTrue(e.healthy());
        }
        try (TpGroup g = group(2, LoraSharding.AUTO); Engine e = new Engine(g, IDS, cfg(8))) {   // the fix: served with the fall-back
            e.registerAdapter("dense", adapter("dense2", 0, 1), false);
            assertEquals(4, run(e, req("z", "dense", GREEDY, 4)).length);
        }
    }

    /** An adapter the group refuses when it is made resident fails the requests waiting for it, and nothing else. */
    @Test
    void aRefusalAtResidencyFailsOnlyThatAdaptersRequests() throws Exception {
        try (TpGroup g = group(1, LoraSharding.AUTO); PoisonRunner pr = new PoisonRunner(g); Engine e = new Engine(pr, IDS, cfg(8))) {
            e.registerAdapter("a0", adapter("a0", 0, 1), false);
            pr.addFailures.set(1);
            EngineTest.Collector bad = new EngineTest.Collector();
            e.submit(req("bad", "a0", GREEDY, 4), bad);
            EngineException ex = failure(bad);
            assertEquals(400, ex.status());
            assertTrue(ex.getMessage().contains("Failed to load LoRA adapter 'a0': refused by the test runner"), ex.getMessage());
            assertTrue(e.healthy());
            assertEquals(4, run(e, req("base", null, GREEDY, 4)).length);
            assertEquals(4, run(e, req("again", "a0", GREEDY, 4)).length, "the adapter is tried again for a later request");
        }
    }

    /** A loader that throws an Error (out of memory) fails the waiting requests with a message; the adapter is not left loading. */
    @Test
    void aLoaderErrorFailsTheWaitingRequestsAndLeavesTheAdapterUnloaded() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        AdapterLoader flaky = (name, path, model, maxRank) -> {
            if (name.equals("a0") && calls.incrementAndGet() == 2) throw new OutOfMemoryError("stub: no memory for " + name);
            return AdapterLoader.PEFT.load(name, path, model, maxRank);
        };
        try (TpGroup g = group(1, LoraSharding.AUTO);
             Engine e = new Engine(g, IDS, cfg(1), Engine.PROMPT_LOGPROB_FLOATS_PER_STEP, flaky)) {
            e.registerAdapter("a0", adapter("a0", 0, 1), false);          // load 1
            e.registerAdapter("a1", adapter("a1", 0, 2), false);
            int[] want = run(e, req("first", "a0", GREEDY, 6));
            run(e, req("evict", "a1", GREEDY, 2));                          // max_cpu_loras 1: a0 is evicted and dropped
            EngineTest.Collector bad = new EngineTest.Collector();
            e.submit(req("bad", "a0", GREEDY, 6), bad);                     // load 2 throws
            EngineException ex = failure(bad);
            assertEquals(500, ex.status());
            assertTrue(ex.getMessage().contains("Failed to load LoRA adapter 'a0': java.lang.OutOfMemoryError: stub: no memory for a0"), ex.getMessage());
            AdapterInfo info = e.adapters().stream().filter(a -> a.name().equals("a0")).findFirst().orElseThrow();
            assertFalse(info.resident());
            assertTrue(e.healthy());
            assertArrayEquals(want, run(e, req("later", "a0", GREEDY, 6)), "load 3 succeeds and serves");
        }
    }

    /** A model vocabulary smaller than the tokenizer's is refused at construction, naming both sizes. */
    @Test
    void aModelVocabularySmallerThanTheTokenizersIsRefused() {
        try (TpGroup g = group(1, LoraSharding.AUTO)) {
            IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> new Engine(g, ids(C.vocabSize() + 1), cfg(8)));
            assertTrue(ex.getMessage().contains("301 token ids") && ex.getMessage().contains("only 300 rows"), ex.getMessage());
        }
    }

    /**
     * A step that never returns (a collective waiting for a stopped rank): {@link Engine#fail} from another thread
     * answers the running and the waiting request with 503 at once, turns the engine unhealthy and refuses new work.
     */
    @Test
    void failFromOutsideAnswersEveryRequestWhileAStepHangs() throws Exception {
        java.util.concurrent.CountDownLatch inStep = new java.util.concurrent.CountDownLatch(1), release = new java.util.concurrent.CountDownLatch(1);
        try (TpGroup g = group(1, LoraSharding.AUTO)) {
            ModelRunner hanging = new ForwardingRunner(g) {
                @Override public void forward(StepBatch b, float[] logits) {
                    inStep.countDown();
                    try { release.await(); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); }
                    super.forward(b, logits);
                }
            };
            try (Engine e = new Engine(hanging, IDS, cfg(4))) {
                EngineTest.Collector running = new EngineTest.Collector();
                e.submit(req("r", null, GREEDY, 20), running);
                assertTrue(inStep.await(30, java.util.concurrent.TimeUnit.SECONDS), "the step started");
                EngineTest.Collector waiting = new EngineTest.Collector();
                e.submit(req("w", null, GREEDY, 5), waiting);
                e.fail(new dev.bdserve.parallel.TpGroupException("rank 1's collective timed out"));
                for (EngineTest.Collector c : List.of(running, waiting)) {
                    EngineException ex = failure(c);
                    assertEquals(503, ex.status());
                    assertTrue(ex.getMessage().contains("rank 1's collective timed out"), ex.getMessage());
                }
                assertFalse(e.healthy());
                assertEquals(503, assertThrows(EngineException.class, () -> e.submit(req("late", null, GREEDY, 5), new EngineTest.Collector())).status());
                release.countDown();                              // the step returns: nothing is reported twice
                assertTrue(running.streamedText.isEmpty(), running.streamedText.toString());
            }
        }
    }
}
