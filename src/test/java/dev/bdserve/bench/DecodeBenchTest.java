package dev.bdserve.bench;

import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.parallel.Collective;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** `bench decode`'s runs: one strategy at a time and several interleaved step by step give the same work per strategy. */
class DecodeBenchTest {
    /** 3 layers, 8 heads, TP 2 splits everything evenly. */
    static final LlamaConfig C = new LlamaConfig(256, 64, 128, 3, 8, 8, 8, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");

    @TempDir Path dir;

    LoraAdapter adapter(String name, int rank, int nblocks) {
        Path p = dir.resolve(name);
        new SynthAdapter(rank, nblocks, SynthAdapter.parseTargets("all"), DType.F32, rank, false, 0.3, name.hashCode()).write(p, C, "test");
        return PeftAdapterLoader.load(name, p, C, 64);
    }

    @Test
    void interleavedRunsCountWhatSeparateRunsCount() {
        var opts = new TpGroup.Options(2, 1, LoraSharding.AUTO, LoraSharding.REPLICATED, 0).withKvCache(64L << 20, 16);
        try (TpGroup g = TpGroup.threads(() -> new SynthModel(C, DType.F32, 5), opts)) {
            Map<String, int[]> strategies = new LinkedHashMap<>();
            strategies.put("base", new int[0]);
            strategies.put("slora", new int[] {g.addAdapter(adapter("dense", 8, 0), LoraSharding.SLORA)});
            strategies.put("bdlora", new int[] {g.addAdapter(adapter("bd", 8, 2), LoraSharding.BDLORA)});
            DecodeBench bench = new DecodeBench(g);
            var s = new DecodeBench.Settings(3, 5, 6, 2, 0.05, 64, 7);
            Map<String, DecodeBench.Timing> inter = bench.runInterleaved(s, strategies);
            assertEquals(List.of("base", "slora", "bdlora"), List.copyOf(inter.keySet()));
            int L = C.numLayers();
            for (var e : strategies.entrySet()) {
                DecodeBench.Timing alone = bench.run(s, e.getValue()), t = inter.get(e.getKey());
                assertEquals(6, t.decodeSteps());
                assertEquals(15, t.prefillTokens());
                assertTrue(t.decodeSeconds() > 0 && t.prefillSeconds() > 0, e.getKey());
                for (Collective c : Collective.values())
                    assertEquals(alone.decodeComm().calls(c), t.decodeComm().calls(c), e.getKey() + " " + c);
                assertEquals(alone.loraFlopsPerStep(), t.loraFlopsPerStep(), 1e-9, e.getKey());
                assertEquals(alone.loraBytesPerStep(), t.loraBytesPerStep(), 1e-9, e.getKey());
            }
            // per decode step: 2L base all-reduces; S-LoRA's 4 module groups add one collective per layer each; BD-LoRA none
            long base = inter.get("base").decodeComm().modelCalls(), sl = inter.get("slora").decodeComm().modelCalls(),
                    bd = inter.get("bdlora").decodeComm().modelCalls();
            assertEquals(base, bd);
            assertEquals(6L * 4 * L, sl - base);
            assertEquals(6L * 2 * L, inter.get("base").decodeComm().calls(Collective.ATTN_OUT) + inter.get("base").decodeComm().calls(Collective.MLP_OUT));
            assertEquals(0, inter.get("base").loraFlopsPerStep());

            for (DecodeBench.Timing t : inter.values())
                assertEquals(t.decodeSeconds(), java.util.Arrays.stream(t.stepSeconds()).sum(), 1e-9);
            DecodeBench.Timing twice = inter.get("slora").merge(inter.get("slora"));
            assertEquals(12, twice.stepSeconds().length);
            assertEquals(inter.get("slora").stepSeconds()[5], twice.stepSeconds()[11]);
            assertEquals(12, twice.decodeSteps());
            assertEquals(2 * inter.get("slora").decodeSeconds(), twice.decodeSeconds(), 1e-12);
            assertEquals(2 * sl, twice.decodeComm().modelCalls());
            assertEquals(inter.get("slora").loraFlopsPerStep(), twice.loraFlopsPerStep(), 1e-9);
        }
    }

    /** The warm-up runs its steps every time, and more only until the assignment has had warmupSeconds in the process. */
    @Test
    void warmUpByTimeHappensOncePerAdapterAssignment() {
        var opts = new TpGroup.Options(2, 1, LoraSharding.AUTO, LoraSharding.REPLICATED, 0).withKvCache(64L << 20, 16);
        try (TpGroup g = TpGroup.threads(() -> new SynthModel(C, DType.F32, 5), opts)) {
            DecodeBench bench = new DecodeBench(g);
            var s = new DecodeBench.Settings(3, 5, 6, 2, 0.3, 64, 7);
            int L = C.numLayers();
            long c0 = g.commStats().calls(Collective.ATTN_OUT), t0 = System.nanoTime();
            bench.run(s, new int[0]);
            double firstSeconds = (System.nanoTime() - t0) / 1e9;
            long first = g.commStats().calls(Collective.ATTN_OUT) - c0;
            long c1 = g.commStats().calls(Collective.ATTN_OUT);
            bench.run(s, new int[0]);
            long second = g.commStats().calls(Collective.ATTN_OUT) - c1;
            // per run: 2 warm-up steps + the warm-up prefill + 1 prefill forward (15 tokens, chunk 64) + 6 decode steps
            assertEquals(10L * L, second);
            assertTrue(firstSeconds >= 0.3, "first run took " + firstSeconds + " s");
            assertTrue(first >= second, first + " vs " + second);   // more where 2 warm-up steps took less than 0.3 s
        }
        assertThrows(IllegalArgumentException.class, () -> new DecodeBench.Settings(1, 1, 1, 0, -1, 1, 0));
    }

    static DecodeBench.Timing steps(double... seconds) {
        return new DecodeBench.Timing(1, 1, java.util.Arrays.stream(seconds).sum(), seconds.length, 1, 0, 0, 0, 0,
                new dev.bdserve.parallel.CommStats(), new dev.bdserve.parallel.CommStats(), seconds);
    }

    /** Step i of one run against step i of the other, median of the ratios: one slow step does not move it. */
    @Test
    void medianOfPairedStepRatios() {
        assertEquals(1.1, DecodeBench.medianPairedRatio(steps(1.1, 2.2, 3.3), steps(1, 2, 3)), 1e-12);
        assertEquals(1.1, DecodeBench.medianPairedRatio(steps(1.1, 2.2, 30, 4.4, 5.5), steps(1, 2, 3, 4, 5)), 1e-12);   // a burst in step 3
        assertEquals((1.0 + 1.2) / 2, DecodeBench.medianPairedRatio(steps(1, 1.2), steps(1, 1)), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> DecodeBench.medianPairedRatio(steps(1, 2), steps(1)));
        assertThrows(IllegalArgumentException.class, () -> new DecodeBench.Timing(1, 1, 1, 2, 1, 0, 0, 0, 0,
                new dev.bdserve.parallel.CommStats(), new dev.bdserve.parallel.CommStats(), new double[1]));
    }

    /** Runs on given prompts (bench peer's, shared with llama.cpp): every sequence's prompt is prefilled; wrong shapes are refused. */
    @Test
    void givenPromptsArePrefilledAndMustFitTheSettings() {
        try (TpGroup g = TpGroup.threads(() -> new SynthModel(C, DType.F32, 5), TpGroup.Options.single(1).withKvCache(16L << 20, 16))) {
            DecodeBench bench = new DecodeBench(g);
            var s = new DecodeBench.Settings(2, 4, 3, 0, 0, 64, 1);
            DecodeBench.Timing t = bench.run(s, new int[][] {{5, 6, 7, 8}, {9, 10, 11, 12}});
            assertEquals(8, t.prefillTokens());
            assertEquals(3, t.decodeSteps());
            assertTrue(t.prefillTokensPerSecond() > 0 && t.decodeTokensPerSecond() > 0);
            assertThrows(IllegalArgumentException.class, () -> bench.run(s, new int[][] {{5, 6, 7, 8}}));
            assertThrows(IllegalArgumentException.class, () -> bench.run(s, new int[][] {{5, 6, 7}, {9, 10, 11}}));
        }
    }
}
