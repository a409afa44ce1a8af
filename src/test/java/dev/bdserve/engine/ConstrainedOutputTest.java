package dev.bdserve.engine;

import dev.bdserve.model.SynthModel;
import dev.bdserve.structured.Constraint;
import dev.bdserve.structured.TokenVocabulary;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Structured-output constraints in the output processor and the engine, without HTTP: masks before sampling, EOS only
 * where the output is complete, a dead constraint ends its request with an error, and a constrained request in a
 * batch leaves its neighbours' outputs alone.
 */
class ConstrainedOutputTest {
    /** Ids 0–3 spell "a", "b", "c", " "; id 4 is EOS; id 5 spells "!" (as in {@link OutputProcessorTest}). */
    static TokenVocabulary charsVocabulary() {
        String[] p = OutputProcessorTest.PIECES;
        byte[][] b = new byte[p.length][];
        for (int i = 0; i < p.length; i++) b[i] = p[i].isEmpty() ? null : p[i].getBytes();
        return TokenVocabulary.of(b, new int[]{4});
    }

    static OutputProcessor constrained(Constraint c, SamplingParams p, int limit) {
        return new OutputProcessor(p, OutputProcessorTest.CHARS, new int[]{4}, null, limit, c.newMatcher(charsVocabulary()));
    }

    @Test
    void greedyFollowsTheConstraintAgainstTheLogitsAndStopsAtItsEnd() throws Exception {
        OutputProcessor o = constrained(Constraint.regex("(ab|ca)c"), SamplingParams.greedy(), 10);
        float[] row = {0, 0, 1, 0, 5, 9};                           // "!" and EOS are the model's favourites
        List<Integer> got = new ArrayList<>();
        OutputProcessor.Step s;
        do {
            s = o.next(row.clone(), 0, row.length);
            got.add(s.token());
        } while (s.finish() == null);
        assertEquals(List.of(2, 0, 2, -1), got, "c (best allowed), a, c, then EOS once complete");
        assertEquals("cac", o.text());
        assertEquals("stop", o.finish());
        assertEquals(4, o.matcher().maskCount());
    }

    @Test
    void eosIsMaskedUntilTheOutputIsCompleteAndIgnoreEosDoesNotRunPastIt() throws Exception {
        SamplingParams ignoreEos = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
        OutputProcessor o = constrained(Constraint.choice(List.of("ab", "abab")), ignoreEos, 10);
        float[] eosFirst = {0, 1, 0, 0, 9, 0};
        assertEquals(0, o.next(new float[]{1, 0, 0, 0, 9, 0}, 0, 6).token());
        assertEquals(1, o.next(eosFirst.clone(), 0, 6).token());
        OutputProcessor.Step end = o.next(eosFirst.clone(), 0, 6);     // "ab" is complete: EOS is allowed and ends it
        assertEquals(-1, end.token());
        assertEquals("stop", end.finish());
        assertEquals("ab", o.text());
    }

    @Test
    void sampledTokensAlwaysStayInsideTheConstraint() throws Exception {
        for (long seed = 0; seed < 20; seed++) {
            OutputProcessor o = constrained(Constraint.regex("[ab]{2,5}!"), new SamplingParams(1.5, 0, 1, 0, seed, List.of(), false), 20);
            while (o.finish() == null) o.next(new float[]{0, 0, 3, 3, 3, 3}, 0, 6);
            assertEquals("stop", o.finish());
            assertTrue(o.text().matches("[ab]{2,5}!"), o.text());
        }
    }

    @Test
    void lengthIsJustLength() throws Exception {
        OutputProcessor o = constrained(Constraint.regex("a+b"), SamplingParams.greedy(), 3);
        OutputProcessor.Step s = null;
        for (int i = 0; i < 3; i++) s = o.next(new float[]{5, 0, 0, 0, 9, 0}, 0, 6);
        assertEquals("length", s.finish());
        assertEquals("aaa", o.text());
    }

    @Test
    void aConstraintTheVocabularyCannotCompleteThrowsAClearError() throws Exception {
        // "x" is not in the vocabulary: "a" then "b" are allowed (the grammar goes on), after "ab" no token is
        OutputProcessor o = constrained(Constraint.regex("a(bx|c)"), SamplingParams.greedy(), 10);
        float[] b = {0, 5, 0, 0, 0, 0};
        assertEquals(0, o.next(b.clone(), 0, 6).token());
        assertEquals(1, o.next(b.clone(), 0, 6).token());
        ConstraintDeadException e = assertThrows(ConstraintDeadException.class, () -> o.next(b.clone(), 0, 6));
        assertTrue(e.getMessage().contains("cannot be completed") && e.getMessage().contains("regex") && e.getMessage().contains("\"ab\""), e.getMessage());
        OutputProcessor dead = constrained(Constraint.regex("x"), SamplingParams.greedy(), 10);
        assertThrows(ConstraintDeadException.class, () -> dead.next(new float[6], 0, 6));
    }

    @Test
    void padRowsPastTheVocabularyAreNeverSampled() throws Exception {
        OutputProcessor o = constrained(Constraint.regex("[abc !]*"), SamplingParams.greedy(), 4);
        float[] row = {0, 0, 0, 0, 0, 0, 50, 60};                 // two padding rows with the best logits
        int t = o.next(row, 0, row.length).token();
        assertTrue(t >= 0 && t < 6, "got " + t);
    }

    // ---------------------------------------------------------------- the engine

    /** ids 0, 1 special (BOS 1), 2 EOS, 3 … 97 the printable ASCII bytes 0x20 … 0x7E, the rest special. */
    static final Tokenizer ASCII = new Tokenizer() {
        public int vocabSize() { return EngineTest.C.vocabSize(); }
        public int bosId() { return 1; }
        public int[] eosIds() { return new int[]{2}; }
        public int[] encode(String text, boolean addBos) { throw new UnsupportedOperationException(); }
        public byte[] outputBytes(int id) { return id >= 3 && id <= 97 ? new byte[]{(byte) (0x1D + id)} : null; }
        public String decode(int[] ids) {
            StringBuilder b = new StringBuilder();
            for (int i : ids) if (outputBytes(i) != null) b.append((char) (0x1D + i));
            return b.toString();
        }
        public StreamDecoder newStreamDecoder() {
            return new StreamDecoder() {
                public String push(int id) { return decode(new int[]{id}); }
                public String flush() { return ""; }
            };
        }
    };

    static RequestResult run(Engine e, EngineRequest r) throws Exception {
        EngineTest.Collector c = new EngineTest.Collector();
        e.submit(r, c);
        return c.get();
    }

    @Test
    void inOneBatchConstrainedAndFreeRequestsGetWhatTheyGetAlone() throws Exception {
        try (var g = dev.bdserve.engine.TpGroup.threads(() -> new SynthModel(EngineTest.C, DType.F32, 31),
                new TpGroup.Options(1, 2, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.SLORA, 0).withKvCache(64L << 20, 16));
             Engine e = new Engine(g, ASCII, EngineTest.cfg(8, 256, 2, 2))) {
            Constraint word = Constraint.regex("[a-z]{3,6}( [a-z]{3,6}){0,2}\\.");
            Constraint json = Constraint.jsonSchema("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"maximum\":99,\"minimum\":0}},"
                    + "\"required\":[\"n\"],\"additionalProperties\":false}");
            List<EngineRequest> reqs = List.of(
                    new EngineRequest("free1", new int[]{1, 40, 50}, null, SamplingParams.greedy(), 12),
                    new EngineRequest("word", new int[]{1, 40, 50}, null, SamplingParams.greedy(), 40, word),
                    new EngineRequest("json", new int[]{1, 41}, null, SamplingParams.greedy(), 40, json),
                    new EngineRequest("free2", new int[]{1, 41}, null, SamplingParams.greedy(), 12));
            List<RequestResult> alone = new ArrayList<>();
            for (EngineRequest r : reqs) alone.add(run(e, r));
            List<EngineTest.Collector> cs = new ArrayList<>();
            for (EngineRequest r : reqs) {
                EngineTest.Collector c = new EngineTest.Collector();
                e.submit(r, c);
                cs.add(c);
            }
            for (int i = 0; i < reqs.size(); i++) {
                RequestResult together = cs.get(i).get();
                assertArrayEquals(alone.get(i).tokens(), together.tokens(), reqs.get(i).id());
                assertEquals(alone.get(i).finishReason(), together.finishReason(), reqs.get(i).id());
            }
            assertEquals("stop", alone.get(1).finishReason());
            assertTrue(alone.get(1).text().matches("[a-z]{3,6}( [a-z]{3,6}){0,2}\\."), alone.get(1).text());
            assertEquals("stop", alone.get(2).finishReason());
            assertTrue(alone.get(2).text().replace(" ", "").matches("\\{\"n\":\\d{1,2}}"), alone.get(2).text());
            // the free requests are not constrained: the synthetic model's greedy choice includes special ids
            BitSet special = new BitSet();
            for (int t : alone.get(0).tokens()) if (ASCII.outputBytes(t) == null) special.set(t);
            assertFalse(special.isEmpty(), "the unconstrained output uses ids a constraint never allows: " + java.util.Arrays.toString(alone.get(0).tokens()));
        }
    }

    /** The static generator takes the same path: its constrained outputs equal the engine's. */
    @Test
    void theStaticGeneratorConstrainsAsTheEngineDoes() throws Exception {
        Constraint word = Constraint.regex("[a-z]{3,6}( [a-z]{3,6}){0,2}\\.");
        int[] prompt = {1, 40, 50};
        RequestResult viaEngine;
        try (var g = dev.bdserve.engine.TpGroup.threads(() -> new SynthModel(EngineTest.C, DType.F32, 31),
                new TpGroup.Options(1, 2, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.SLORA, 0).withKvCache(64L << 20, 16));
             Engine e = new Engine(g, ASCII, EngineTest.cfg(8, 256, 2, 2))) {
            viaEngine = run(e, new EngineRequest("w", prompt, null, SamplingParams.greedy(), 40, word));
        }
        try (var g = dev.bdserve.engine.TpGroup.threads(() -> new SynthModel(EngineTest.C, DType.F32, 31),
                new TpGroup.Options(1, 2, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.SLORA, 0).withKvCache(64L << 20, 16))) {
            Generator gen = new Generator(g, ASCII, 512);
            GenerationResult r = gen.generate(List.of(new GenerationRequest(prompt, 40, SamplingParams.greedy(), -1, word),
                    new GenerationRequest(prompt, 12, SamplingParams.greedy(), -1)), null).getFirst();
            assertArrayEquals(viaEngine.tokens(), r.tokens());
            assertEquals("stop", r.finishReason());
            assertEquals(viaEngine.text(), r.text());
            assertThrows(ConstraintDeadException.class, () -> gen.generate(List.of(new GenerationRequest(prompt, 5, SamplingParams.greedy(), -1,
                    Constraint.regex("é"))), null));
        }
    }

    @Test
    void aDeadConstraintEndsTheRequestWithAnErrorNotAHang() throws Exception {
        try (var g = dev.bdserve.engine.TpGroup.threads(() -> new SynthModel(EngineTest.C, DType.F32, 31),
                new TpGroup.Options(1, 2, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.SLORA, 0).withKvCache(64L << 20, 16));
             Engine e = new Engine(g, ASCII, EngineTest.cfg(8, 256, 2, 2))) {
            EngineTest.Collector c = new EngineTest.Collector();
            e.submit(new EngineRequest("dead", new int[]{1, 40}, null, SamplingParams.greedy(), 10, Constraint.regex("é")), c);
            ExecutionException ex = assertThrows(ExecutionException.class, c::get);
            EngineException ee = assertInstanceOf(EngineException.class, ex.getCause());
            assertEquals(500, ee.status());
            assertTrue(ee.getMessage().contains("cannot be completed"), ee.getMessage());
            // the engine goes on
            assertEquals("length", run(e, new EngineRequest("after", new int[]{1, 40}, null, SamplingParams.greedy(), 3)).finishReason());
        }
    }

    @Test
    void aTokenizerWithoutTokenBytesRefusesConstraintsWith400() throws Exception {
        try (var g = dev.bdserve.engine.TpGroup.threads(() -> new SynthModel(EngineTest.C, DType.F32, 31),
                new TpGroup.Options(1, 2, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.SLORA, 0).withKvCache(64L << 20, 16));
             Engine e = new Engine(g, EngineTest.IDS, EngineTest.cfg(8, 256, 2, 2))) {
            EngineException ee = assertThrows(EngineException.class, () -> e.submit(new EngineRequest("c", new int[]{1, 40}, null,
                    SamplingParams.greedy(), 5, Constraint.regex("a")), new EngineTest.Collector()));
            assertEquals(400, ee.status());
            assertTrue(ee.getMessage().contains("Structured output is not available"), ee.getMessage());
        }
    }
}
