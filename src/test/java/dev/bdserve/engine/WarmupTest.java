package dev.bdserve.engine;

import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The start-up warm-up: every stream runs to its length over the base model and the adapters, within the context. */
class WarmupTest {
    @TempDir Path dir;

    /** Characters as ids above the specials, so any text encodes. */
    static Tokenizer chars(int vocab) {
        return new Tokenizer() {
            public int vocabSize() { return vocab; }
            public int bosId() { return 1; }
            public int[] eosIds() { return new int[]{2}; }
            public int[] encode(String text, boolean addBos) {
                return java.util.stream.IntStream.concat(addBos ? java.util.stream.IntStream.of(1) : java.util.stream.IntStream.empty(),
                        text.chars().map(c -> 3 + c % (vocab - 3))).toArray();
            }
            public String decode(int[] ids) { return "x".repeat(ids.length); }
            public StreamDecoder newStreamDecoder() {
                return new StreamDecoder() {
                    public String push(int id) { return "x"; }
                    public String flush() { return ""; }
                };
            }
        };
    }

    static Engine engine(LlamaConfig c) {
        TpGroup g = TpGroup.threads(() -> new SynthModel(c, DType.F32, 31),
                new TpGroup.Options(1, 2, LoraSharding.AUTO, LoraSharding.SLORA, 0).withKvCache(16L << 20, 16));
        return new Engine(g, chars(c.vocabSize()), new EngineConfig(8, 256, 4, 8, 64, 16L << 20, 16, 100, true));
    }

    @Test
    void everyStreamRunsToItsLengthOverBaseAndAdapters() throws Exception {
        LlamaConfig c = EngineTest.C;
        try (Engine e = engine(c)) {
            for (int i = 0; i < 2; i++) {
                Path p = dir.resolve("a" + i);
                new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 8, false, 0.3, 40 + i).write(p, c, "test");
                e.registerAdapter("a" + i, p, false);
            }
            Warmup.Report r = Warmup.run(e, List.of("a0", "a1"), 5, 32);
            assertNull(r.failure());
            assertEquals(5, r.streams());
            assertEquals(8 + 9 + 10 + 11 + 12, r.tokens(), "stream s generates 8 + s tokens, EOS ignored");
            assertEquals(5L, e.stats().requestsFinished().get("length"), "the warm-up requests ran through the engine");
            var per = e.stats().perAdapter();
            assertEquals(List.of(2L, 2L, 1L), List.of(per.get("").requests(), per.get("a0").requests(), per.get("a1").requests()),
                    "streams cycle over the base model, a0 and a1");
        }
    }

    @Test
    void promptsAndLengthsShrinkToASmallContext() throws Exception {
        LlamaConfig base = EngineTest.C;
        LlamaConfig small = new LlamaConfig(base.vocabSize(), base.hiddenSize(), base.intermediateSize(), base.numLayers(), base.numHeads(),
                base.numKvHeads(), base.headDim(), 24, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
        try (Engine e = engine(small)) {
            Warmup.Report r = Warmup.run(e, List.of(), 6, 100);
            assertNull(r.failure());
            assertEquals(8 + 9 + 10 + 11 + 11 + 11, r.tokens(), "prompts cut to 12 tokens leave room for 11 of the 8 + s each stream asks");
        }
    }

    @Test
    void aRefusedStreamIsReportedAndTheOthersRun() throws Exception {
        try (Engine e = engine(EngineTest.C)) {
            Warmup.Report r = Warmup.run(e, List.of("missing"), 4, 16);
            assertNotNull(r.failure());
            assertTrue(r.failure().contains("missing"), r.failure());
            assertEquals(8 + 10, r.tokens(), "the two base-model streams (0 and 2) ran");
        }
    }

    @Test
    void refusesNonsenseArguments() {
        try (Engine e = engine(EngineTest.C)) {
            assertThrows(IllegalArgumentException.class, () -> Warmup.run(e, List.of(), 0, 16));
            assertThrows(IllegalArgumentException.class, () -> Warmup.run(e, List.of(), 2, 0));
        }
    }
}
