package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.parallel.Collective;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Tensor-parallel groups over the threads transport reproduce TP 1, for every adapter sharding, with the documented collective counts. */
class TpEquivalenceTest {
    /** 8 heads, 8 KV heads, FFN 128: splits 1, 2, 4 and 8 ways; vocab 250 does not divide evenly. */
    static final LlamaConfig TP = new LlamaConfig(250, 64, 128, 3, 8, 8, 8, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    /** 8 heads, 2 KV heads: at TP 4 the KV heads are replicated. */
    static final LlamaConfig GQA = new LlamaConfig(250, 64, 128, 2, 8, 2, 8, 256, 1e-5f, 10000, null, true, 1, List.of(2), "float32");

    /** Qwen2-like: q/k/v biases sharded with their rows, tied embeddings. */
    static final LlamaConfig QWEN2 = new LlamaConfig(250, 64, 128, 2, 8, 8, 8, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
            DecoderVariant.qwen2(0));
    /** Qwen3-like: per-head q/k norms, head_dim 12 with hidden 48 (q_proj [96, 48]), 4 KV heads. */
    static final LlamaConfig QWEN3 = new LlamaConfig(250, 48, 128, 2, 8, 4, 12, 256, 1e-6f, 1000000, null, false, 1, List.of(2), "float32",
            DecoderVariant.qwen3(0));
    /** Mistral-like: a window of 4 positions, shorter than most of the script's sequences. */
    static final LlamaConfig MISTRAL = new LlamaConfig(250, 64, 128, 2, 8, 4, 8, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32",
            DecoderVariant.mistral(4));
    /** Gemma 2-like: windows of 4 on layers 0 and 2, soft-caps (small, so they bite), sandwich norms, tanh GELU, tied. */
    static final LlamaConfig GEMMA2 = new LlamaConfig(250, 64, 128, 3, 8, 4, 8, 256, 1e-6f, 10000, null, true, 1, List.of(2), "float32",
            DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 4, 5, 3, 12));
    /** Gemma 3-like: windows of 4 on layers 0 and 2 (pattern 2), q/k norms, a local RoPE base, head_dim 16 with hidden 64. */
    static final LlamaConfig GEMMA3 = new LlamaConfig(250, 64, 128, 3, 8, 4, 16, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
            DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 4, 2, 10000, 16));

    /** Phi-3-like: fused qkv_proj / gate_up_proj (adapters on them split per part), LongRoPE with long factors, a window of 5. */
    static final LlamaConfig PHI3 = new LlamaConfig(250, 64, 128, 2, 8, 4, 8, 256, 1e-5f, 10000,
            new LlamaConfig.RopeScaling.LongRope(new float[]{1, 1.5f, 2, 3}, new float[]{1.2f, 2, 4, 8}, 64,
                    LlamaConfig.RopeScaling.LongRope.defaultAttentionFactor(256, 64)), false, 1, List.of(2), "float32", DecoderVariant.phi3(5));

    @TempDir Path dir;

    static TpGroup group(LlamaConfig c, DType dt, int tp, LoraSharding s, LoraSharding fallback) {
        return TpGroup.threads(() -> new SynthModel(c, dt, 21), new TpGroup.Options(tp, 1, s, fallback, 0));
    }

    LoraAdapter adapter(LlamaConfig c, String name, int rank, int nblocks, DType dt, String targets) {
        Path p = dir.resolve(name);
        new SynthAdapter(rank, nblocks, SynthAdapter.parseTargets(targets), dt, rank, false, 0.3, name.hashCode()).write(p, c, "test");
        return PeftAdapterLoader.load(name, p, c, 64);
    }

    static List<float[]> script(TpGroup g, int[] adapterOfSeq) { return TpScript.run(g, adapterOfSeq); }

    static void assertClose(List<float[]> ref, List<float[]> got, String label) {
        String why = TpScript.compare(ref, got);
        assertNull(why, label + ": " + why);
    }

    /** Runs the script at TP 1 and at TP n with the given adapters (by spec) and compares. */
    void compare(LlamaConfig c, DType dt, int n, LoraSharding sharding, LoraSharding fallback, String[] specs, int[] adapterOfSeq) {
        List<float[]> ref, got;
        try (TpGroup g1 = group(c, dt, 1, LoraSharding.AUTO, LoraSharding.REPLICATED)) {
            for (String sp : specs) g1.addAdapter(fromSpec(c, sp));
            ref = script(g1, adapterOfSeq);
        }
        try (TpGroup gn = group(c, dt, n, sharding, fallback)) {
            for (String sp : specs) gn.addAdapter(fromSpec(c, sp));
            got = script(gn, adapterOfSeq);
        }
        assertClose(ref, got, "TP " + n + " " + sharding);
    }

    /** "name:rank:nblocks:dtype:targets". */
    LoraAdapter fromSpec(LlamaConfig c, String spec) {
        String[] f = spec.split(":");
        return adapter(c, f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), DType.valueOf(f[3]), f[4]);
    }

    @ParameterizedTest(name = "TP {0} base model {1}")
    @CsvSource({"2, F32", "4, BF16", "8, F32"})
    void baseModelMatchesTp1(int n, DType dt) {
        compare(TP, dt, n, LoraSharding.AUTO, LoraSharding.REPLICATED, new String[0], new int[]{-1, -1, -1});
        compare(GQA, dt, n == 8 ? 4 : n, LoraSharding.AUTO, LoraSharding.REPLICATED, new String[0], new int[]{-1, -1});
    }

    @ParameterizedTest(name = "TP {0} {1}")
    @CsvSource({
            "2, REPLICATED", "2, SLORA", "4, REPLICATED", "4, SLORA",
    })
    void denseAdaptersMatchTp1(int n, LoraSharding s) {
        // ranks 6 and 5 are not divisible by 4 (zero-padded under S-LoRA); one adapter touches only q,v,down
        String[] specs = {"d6:6:0:F32:all", "d5:5:0:BF16:'q,v,down'".replace("'", ""), "d16:16:0:BF16:all"};
        compare(TP, DType.F32, n, s, LoraSharding.REPLICATED, specs, new int[]{0, 1, -1, 2, 0});
    }

    @ParameterizedTest(name = "TP {0} BD nblocks {1} under {2}")
    @CsvSource({
            "2, 4, BDLORA", "2, 8, BDLORA", "4, 4, BDLORA", "4, 8, BDLORA",
            "2, 4, REPLICATED", "4, 8, SLORA",
    })
    void bdAdaptersMatchTp1(int n, int nblocks, LoraSharding s) {
        String[] specs = {"b1:16:" + nblocks + ":BF16:all", "b2:8:" + nblocks + ":F32:all"};
        compare(TP, DType.BF16, n, s, LoraSharding.REPLICATED, specs, new int[]{0, 1, 0, -1});
    }

    static LlamaConfig variant(String name) {
        return switch (name) {
            case "qwen2" -> QWEN2;
            case "qwen3" -> QWEN3;
            case "mistral" -> MISTRAL;
            case "gemma2" -> GEMMA2;
            case "gemma3" -> GEMMA3;
            case "phi3" -> PHI3;
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** Qwen2, Qwen3, Mistral, Gemma 2 and Gemma 3 under TP: the base model, and dense and BD adapters under every sharding. */
    @ParameterizedTest(name = "{0} TP {1}")
    @CsvSource({"qwen2, 2", "qwen2, 4", "qwen3, 2", "qwen3, 4", "mistral, 2", "mistral, 4", "gemma2, 2", "gemma2, 4", "gemma3, 2", "gemma3, 4", "phi3, 2", "phi3, 4"})
    void variantsMatchTp1(String name, int n) {
        LlamaConfig c = variant(name);
        compare(c, DType.F32, n, LoraSharding.AUTO, LoraSharding.REPLICATED, new String[0], new int[]{-1, -1, -1});
        String[] dense = {"vd6:6:0:F32:all", "vd8:8:0:BF16:q,v,down"};
        compare(c, DType.F32, n, LoraSharding.REPLICATED, LoraSharding.REPLICATED, dense, new int[]{0, 1, -1, 0});
        compare(c, DType.F32, n, LoraSharding.SLORA, LoraSharding.REPLICATED, dense, new int[]{0, 1, -1, 0});
        // BD-LoRA on Phi-3 covers o and down only: its fused modules take dense LoRA, which the bdlora sharding refuses
        String bdTargets = c.variant().fusedQkv() ? "o,down" : "all";
        String[] bd = {"vb:16:4:F32:" + bdTargets, "vb2:8:4:BF16:" + bdTargets};
        compare(c, DType.BF16, n, LoraSharding.BDLORA, LoraSharding.REPLICATED, bd, new int[]{0, 1, -1, 0});
    }

    @Test
    void mixedBatchUnderAutoMatchesTp1() {
        String[] specs = {"bd:16:4:BF16:all", "dense:6:0:F32:all", "bd2:8:2:F32:all"};
        compare(TP, DType.F32, 4, LoraSharding.AUTO, LoraSharding.SLORA, specs, new int[]{0, 1, -1, 2, 1, 0});
        compare(TP, DType.F32, 2, LoraSharding.AUTO, LoraSharding.SLORA, specs, new int[]{0, 1, -1, 2, 1, 0});
    }

    /** Collectives of one decode step of a batch using {@code adapter} (−1: base only). */
    CommStats decodeStepCounts(TpGroup g, int adapter) {
        int vocab = g.config().vocabSize();
        float[] logits = new float[2 * vocab];
        int[][] tables = {{0}, {1}};
        g.forward(new StepBatch(new int[]{5, 6, 7}, new int[]{0, 1, 0}, new int[]{0, 0, 1}, new int[]{adapter, adapter, adapter}, new int[]{1, 2}, tables), logits);
        CommStats before = g.commStats().snapshot();
        g.forward(new StepBatch(new int[]{8, 9}, new int[]{2, 1}, new int[]{0, 1}, new int[]{adapter, adapter}, new int[]{0, 1}, tables), logits);
        return g.commStats().minus(before);
    }

    @Test
    void collectiveCountsPerDecodeStep() {
        int L = TP.numLayers();
        try (TpGroup g = group(TP, DType.F32, 2, LoraSharding.SLORA, LoraSharding.REPLICATED)) {
            int dense = g.addAdapter(fromSpec(TP, "cd:8:0:F32:all"));
            int qv = g.addAdapter(fromSpec(TP, "cq:8:0:F32:q,v"));
            CommStats base = decodeStepCounts(g, -1);
            assertEquals(L, base.calls(Collective.ATTN_OUT));
            assertEquals(L, base.calls(Collective.MLP_OUT));
            assertEquals(1, base.calls(Collective.LOGITS));
            assertEquals(2 * L + 1, base.modelCalls());
            CommStats sl = decodeStepCounts(g, dense);
            assertEquals(2 * L + 1 + 4 * L, sl.modelCalls(), "S-LoRA adds one collective per module group per layer");
            for (Collective c : new Collective[]{Collective.LORA_QKV, Collective.LORA_O, Collective.LORA_GATE_UP, Collective.LORA_DOWN})
                assertEquals(L, sl.calls(c), c.name());
            CommStats qvOnly = decodeStepCounts(g, qv);
            assertEquals(2 * L + 1 + L, qvOnly.modelCalls(), "only the qkv group is touched");
        }
        try (TpGroup g = group(TP, DType.F32, 4, LoraSharding.BDLORA, LoraSharding.REPLICATED)) {
            int bd = g.addAdapter(fromSpec(TP, "cb:16:4:F32:all"));
            assertEquals(2 * L + 1, decodeStepCounts(g, bd).modelCalls(), "BD-LoRA adds no collective");
            LoraAdapter a = fromSpec(TP, "cb2:16:4:F32:all");
            int id = g.addAdapter(a);
            assertEquals(a.bytes() / 4, g.adapterBytesHeld(id), "each rank holds 1/N of the packed adapter");
        }
        try (TpGroup g = group(TP, DType.F32, 2, LoraSharding.REPLICATED, LoraSharding.REPLICATED)) {
            int d = g.addAdapter(fromSpec(TP, "cr:8:0:F32:all"));
            assertEquals(2 * L + 1, decodeStepCounts(g, d).modelCalls(), "replicated adds no collective");
        }
    }

    @Test
    void bdloraIsRefusedWhereItCannotBeCommunicationFree() {
        try (TpGroup g = group(TP, DType.F32, 4, LoraSharding.BDLORA, LoraSharding.REPLICATED)) {
            var e = assertThrows(IllegalArgumentException.class, () -> g.addAdapter(fromSpec(TP, "n2:8:2:F32:all")));
            assertTrue(e.getMessage().contains("nblocks 2 is not a multiple of TP 4"), e.getMessage());
            var e2 = assertThrows(IllegalArgumentException.class, () -> g.addAdapter(fromSpec(TP, "dn:8:0:F32:all")));
            assertTrue(e2.getMessage().contains("not a BD-LoRA adapter"), e2.getMessage());
        }
        try (TpGroup g = group(GQA, DType.F32, 4, LoraSharding.BDLORA, LoraSharding.REPLICATED)) {
            var e = assertThrows(IllegalArgumentException.class, () -> g.addAdapter(fromSpec(GQA, "kv:8:4:F32:all")));
            assertTrue(e.getMessage().contains("2 KV heads, fewer than TP 4"), e.getMessage());
            // AUTO falls back instead, and the group keeps serving
            float[] logits = new float[GQA.vocabSize()];
            g.forward(new StepBatch(new int[]{3}, new int[]{0}, new int[]{0}, new int[]{-1}, new int[]{0}, new int[][]{{0}}), logits);
        }
    }
}
