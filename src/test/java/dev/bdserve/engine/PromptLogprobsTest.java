package dev.bdserve.engine;

import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.ReferenceLlama;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.bdserve.engine.EngineTest.C;
import static dev.bdserve.engine.EngineTest.IDS;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Prompt logprobs (vLLM's prompt_logprobs) from the serving engine equal the log-softmax of a direct single-sequence
 * forward pass over the whole prompt, for the base model and an adapter, at TP 1 and 2, with the prompt split into
 * chunks and batched with other requests; requests that do not ask for them get none.
 */
class PromptLogprobsTest {
    @TempDir Path dir;

    /** Records the prompt logprobs, the tokens and the order in which they arrived. */
    static final class Recorder implements RequestListener {
        final CompletableFuture<RequestResult> done = new CompletableFuture<>();
        final List<String> events = new ArrayList<>();
        volatile PromptLogprobs prompt;

        @Override public void onPromptLogprobs(PromptLogprobs p) { events.add("prompt"); prompt = p; }
        @Override public void onToken(TokenEvent e) { events.add("token"); }
        @Override public void onFinish(RequestResult r) { done.complete(r); }
        @Override public void onError(EngineException e) { done.completeExceptionally(e); }

        RequestResult get() throws Exception { return done.get(120, TimeUnit.SECONDS); }
    }

    static int[] prompt(int len, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] p = new int[len];
        for (int i = 0; i < len; i++) p[i] = 3 + r.nextInt(C.vocabSize() - 3);
        return p;
    }

    Path writeAdapter(String name, int rank, int nblocks) {
        Path p = dir.resolve(name);
        new SynthAdapter(rank, nblocks, SynthAdapter.allModules(), DType.F32, rank, false, 0.5, 77).write(p, C, "test");
        return p;
    }

    /**
     * Log-softmax rows [P][vocab] of one forward pass over the whole prompt on a fresh TP-1 group (every position's
     * logits in one step, no chunking, no other sequence), with the adapter at {@code adapterDir} or the base model.
     */
    static double[][] direct(int[] prompt, String adapter, Path adapterDir) {
        int V = C.vocabSize(), P = prompt.length;
        try (TpGroup g = EngineTest.group(1, 8L << 20)) {
            int aid = adapter == null ? -1 : g.addAdapter(PeftAdapterLoader.load(adapter, adapterDir, C, 64));
            int[] pos = new int[P], seq = new int[P], ads = new int[P], rows = new int[P];
            for (int i = 0; i < P; i++) { pos[i] = i; rows[i] = i; ads[i] = aid; }
            int[][] tables = {new BlockManager(g.kvBlocks(), g.kvBlockSize()).allocateTable(P)};
            float[] logits = new float[P * V];                                    // [P, vocab]
            g.forward(new StepBatch(prompt.clone(), pos, seq, ads, rows, tables), logits);
            double[][] out = new double[P][V];
            for (int t = 0; t < P; t++) {
                double lse = Logprobs.logSumExp(logits, t * V, V);
                for (int v = 0; v < V; v++) out[t][v] = logits[t * V + v] - lse;
            }
            return out;
        }
    }

    /** The engine's prompt logprobs agree with {@code ref} (log-softmax rows) within 1e-4, top-k included. */
    static void assertMatches(double[][] ref, int[] prompt, int k, PromptLogprobs got, String label) {
        assertNotNull(got, label + ": no prompt logprobs");
        assertArrayEquals(prompt, got.tokens(), label);
        assertEquals(prompt.length, got.size(), label);
        assertTrue(Float.isNaN(got.logprobs()[0]), label + ": the first prompt token has no logprob");
        assertTrue(got.top().get(0).isEmpty(), label + ": the first prompt token has no alternatives");
        for (int i = 1; i < prompt.length; i++) {
            double[] row = ref[i - 1];                                            // the position before token i predicts it
            assertEquals(row[prompt[i]], got.logprobs()[i], 1e-4, label + ": logprob of prompt token " + i);
            List<TokenEvent.TopLogprob> top = got.top().get(i);
            assertEquals(k, top.size(), label + ": alternatives at " + i);
            double[] sorted = Arrays.stream(row).sorted().toArray();
            for (int j = 0; j < k; j++) {
                TokenEvent.TopLogprob t = top.get(j);
                assertEquals(sorted[sorted.length - 1 - j], t.logprob(), 1e-4, label + ": rank " + j + " at " + i);
                assertEquals(row[t.token()], t.logprob(), 1e-4, label + ": alternative " + t.token() + " at " + i);
                if (j > 0) assertTrue(top.get(j - 1).logprob() >= t.logprob(), label + ": alternatives are sorted");
            }
        }
    }

    @ParameterizedTest(name = "TP {0}")
    @ValueSource(ints = {1, 2})
    void promptLogprobsEqualADirectForwardPass(int tp) throws Exception {
        Path adapterDir = writeAdapter("bd", 8, 2);
        int[] p1 = prompt(70, 1), p2 = prompt(45, 2), p3 = prompt(30, 3);
        // budget 24 tokens a step: every prompt runs in chunks, batched with the others' chunks and decode tokens
        EngineConfig ec = new EngineConfig(8, 24, 4, 4, 64, 1L << 30, 16, 100, true);
        try (TpGroup g = EngineTest.group(tp, 16L << 20); Engine e = new Engine(g, IDS, ec)) {
            e.registerAdapter("bd", adapterDir, false);
            SamplingParams greedy = SamplingParams.greedy();
            // p1 first alone without prompt logprobs: its full blocks enter the prefix cache
            Recorder warm = new Recorder();
            e.submit(new EngineRequest("warm", p1, null, greedy, 4), warm);
            RequestResult warmed = warm.get();

            Recorder base = new Recorder(), adapted = new Recorder(), plain = new Recorder(), one = new Recorder(),
                    promptOnly = new Recorder(), cached = new Recorder();
            e.submit(new EngineRequest("base", p1, null, greedy.withPromptLogprobs(3), 4), base);
            e.submit(new EngineRequest("adapted", p2, "bd", greedy.withPromptLogprobs(5), 3), adapted);
            e.submit(new EngineRequest("plain", p3, "bd", greedy, 5), plain);
            e.submit(new EngineRequest("one", new int[]{7}, "bd", greedy.withPromptLogprobs(2), 2), one);
            e.submit(new EngineRequest("prompt-only", p2, "bd", greedy.withPromptLogprobs(0), 0), promptOnly);
            e.submit(new EngineRequest("cached", p1, null, greedy, 4), cached);

            RequestResult rb = base.get();
            double[][] refBase = direct(p1, null, null), refAdapted = direct(p2, "bd", adapterDir), refP2Base = direct(p2, null, null);
            double effect = 0;
            for (int i = 1; i < p2.length; i++) effect = Math.max(effect, Math.abs(refAdapted[i - 1][p2[i]] - refP2Base[i - 1][p2[i]]));
            assertTrue(effect > 1e-2, "the adapter changes the prompt logprobs (by " + effect + ")");
            assertMatches(refBase, p1, 3, base.prompt, "base");
            adapted.get();
            assertMatches(refAdapted, p2, 5, adapted.prompt, "adapter");
            assertEquals("prompt", base.events.get(0), "the prompt logprobs come before the first token");
            assertEquals("prompt", adapted.events.get(0));
            assertArrayEquals(warmed.tokens(), rb.tokens(), "prompt logprobs do not change the generated tokens");
            assertEquals(0, rb.metrics().cachedPromptTokens(), "a prompt-logprobs request computes its whole prompt");
            assertTrue(cached.get().metrics().cachedPromptTokens() > 0, "the same prompt without prompt logprobs takes the cached prefix");

            plain.get();
            assertNull(plain.prompt, "a request that does not ask gets no prompt logprobs");
            assertFalse(plain.events.contains("prompt"));

            one.get();
            assertEquals(1, one.prompt.size());
            assertTrue(Float.isNaN(one.prompt.logprobs()[0]));

            RequestResult ro = promptOnly.get();
            assertEquals("length", ro.finishReason());
            assertEquals(0, ro.tokens().length, "max_tokens 0 generates nothing");
            assertEquals(List.of("prompt"), promptOnly.events);
            assertMatches(refAdapted, p2, 0, promptOnly.prompt, "prompt only");
        }
    }

    @Test
    void promptSplitByTheRowCapAndTheFp64ReferenceAgree() throws Exception {
        int[] p = prompt(61, 9);
        // 300 × 7 floats: at most 7 prompt positions a step, so the 61-token prompt takes 9 steps
        EngineConfig ec = new EngineConfig(8, 512, 4, 4, 64, 1L << 30, 16, 100, true);
        try (TpGroup g = EngineTest.group(1, 16L << 20); Engine e = new Engine(g, IDS, ec, 7L * C.vocabSize())) {
            Recorder r = new Recorder(), other = new Recorder();
            long steps0 = e.stats().steps();
            e.submit(new EngineRequest("capped", p, null, SamplingParams.greedy().withPromptLogprobs(4), 2), r);
            e.submit(new EngineRequest("other", prompt(100, 4), null, SamplingParams.greedy(), 2), other);
            r.get();
            other.get();
            assertTrue(e.stats().steps() - steps0 >= 9, "the prompt was split into chunks of at most 7 positions");
            // independent ground truth: the fp64 HF-style reference forward pass
            double[][] logits = new ReferenceLlama(new SynthModel(C, DType.F32, 31)).logits(p);
            double[][] ref = new double[p.length][];
            for (int t = 0; t < p.length; t++) {
                double max = Arrays.stream(logits[t]).max().orElseThrow(), sum = 0;
                for (double v : logits[t]) sum += Math.exp(v - max);
                double lse = max + Math.log(sum);
                ref[t] = Arrays.stream(logits[t]).map(v -> v - lse).toArray();
            }
            assertMatches(ref, p, 4, r.prompt, "capped");
        }
    }

    @Test
    void topLogprobsKeepsTheLargestInOrderWithLowerIdsFirstOnTies() {
        float[] logits = {0f, 3f, 1f, 3f, -2f, 2f, 9f};
        double lse = Logprobs.logSumExp(logits, 1, 5);                             // the row logits[1 .. 6)
        List<TokenEvent.TopLogprob> top = Logprobs.top(logits, 1, 5, 3, lse);
        assertEquals(List.of(0, 2, 4), top.stream().map(TokenEvent.TopLogprob::token).toList());
        assertEquals((float) (3 - lse), top.get(0).logprob());
        assertEquals(5, Logprobs.top(logits, 1, 5, 20, lse).size());
        assertEquals(List.of(), Logprobs.top(logits, 1, 5, 0, lse));
        double sum = 0;
        for (int i = 1; i < 6; i++) sum += Math.exp(logits[i] - lse);
        assertEquals(1.0, sum, 1e-12);
    }
}
