package dev.bdserve.model;

import dev.bdserve.model.io.HfModelSource;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.SpinPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Qwen2 (q/k/v bias), Qwen3 (per-head q/k RMSNorm, head_dim independent of hidden / heads) and Mistral (sliding
 * window) through the one forward pass, against the fp64 reference ({@link ReferenceLlama}, which follows HF
 * modeling_qwen2 / modeling_qwen3 / modeling_mistral), prefill and token-by-token decode, and through an HF folder.
 */
class DecoderVariantsTest {
    static Parallel pool;

    @BeforeAll static void start() { pool = new SpinPool(2); }
    @AfterAll static void stop() { pool.close(); }

    @TempDir Path dir;

    /** Tiny models of each family: GQA, tied and untied heads, a padded vocabulary, windows across KV blocks of 16. */
    static LlamaConfig config(String name) {
        return switch (name) {
            // Qwen2.5-like: biases, tied embeddings, vocab 300 (a tokenizer would use fewer)
            case "qwen2" -> new LlamaConfig(300, 64, 96, 2, 4, 2, 16, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
                    DecoderVariant.qwen2(0));
            // Qwen3-like: head_dim 24 with hidden 48 and 4 heads (q_proj [96, 48], o_proj [48, 96]), untied
            case "qwen3" -> new LlamaConfig(256, 48, 80, 2, 4, 2, 24, 256, 1e-6f, 1000000, null, false, 1, List.of(2), "float32",
                    DecoderVariant.qwen3(0));
            // Mistral-like: windows shorter than a KV block, and longer than one but not a multiple of it
            case "mistral-w5" -> new LlamaConfig(256, 64, 96, 2, 4, 2, 16, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32",
                    DecoderVariant.mistral(5));
            case "mistral-w20" -> new LlamaConfig(256, 64, 96, 2, 4, 1, 16, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32",
                    DecoderVariant.mistral(20));
            // Qwen2 with a window (use_sliding_window, max_window_layers 0) and Qwen3 with one
            case "qwen2-w7" -> config("qwen2").withVariant(DecoderVariant.qwen2(7));
            case "qwen3-w9" -> config("qwen3").withVariant(DecoderVariant.qwen3(9));
            // Phi-3: fused qkv_proj / gate_up_proj, LongRoPE (original 32, max 256: long factors), a window of 6
            case "phi3" -> new LlamaConfig(256, 64, 96, 2, 4, 2, 16, 256, 1e-5f, 10000,
                    new LlamaConfig.RopeScaling.LongRope(new float[]{1, 1.2f, 1.5f, 2, 3, 4, 6, 8}, new float[]{1.1f, 2, 3, 5, 8, 13, 21, 34}, 32,
                            LlamaConfig.RopeScaling.LongRope.defaultAttentionFactor(256, 32)), false, 1, List.of(2), "float32", DecoderVariant.phi3(6));
            // the same with short factors: a context limit within the original one
            case "phi3-short" -> config("phi3").withMaxPositions(32);
            // Gemma 2: windows of 7 on layers 0 and 2, soft-caps, query_pre_attn_scalar unlike head_dim, tied
            case "gemma2" -> new LlamaConfig(256, 64, 96, 3, 4, 2, 16, 256, 1e-6f, 10000, null, true, 2, List.of(1), "float32",
                    DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 7, 20, 10, 24));
            // Gemma 3: window 9 on layers 0, 1 and 3, 4 (pattern 3), a local RoPE base, q/k norms, no soft-caps, GQA 4:1
            case "gemma3" -> new LlamaConfig(256, 64, 96, 5, 4, 1, 32, 256, 1e-6f, 1000000, null, true, 2, List.of(1), "float32",
                    DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 9, 3, 10000, 32));
            default -> throw new IllegalArgumentException(name);
        };
    }

    static double[][] toDouble(float[] flat, int rows, int cols) {
        double[][] d = new double[rows][cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) d[r][c] = flat[r * cols + c];
        return d;
    }

    static void assertMatchesReference(double[][] ref, float[] got, int vocab, double rel, String what) {
        double max = LlamaModelTest.maxAbs(ref);
        for (int t = 0; t < ref.length; t++)
            for (int v = 0; v < vocab; v++)
                assertEquals(ref[t][v], got[t * vocab + v], rel * max, what + ": position " + t + " token " + v);
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"qwen2, F32", "qwen2, BF16", "qwen3, F32", "qwen3, BF16", "mistral-w5, F32", "mistral-w20, F32", "mistral-w20, BF16",
            "qwen2-w7, F32", "qwen3-w9, F32", "gemma2, F32", "gemma2, BF16", "gemma3, F32", "gemma3, BF16",
            "phi3, F32", "phi3, BF16", "phi3-short, F32"})
    void prefillAndDecodeMatchTheFp64Reference(String name, DType dtype) {
        SynthModel src = new SynthModel(config(name), dtype, 7);
        LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
        int vocab = src.config().vocabSize();
        int[] toks = LlamaModelTest.randomTokens(Math.min(45, src.config().maxPositions()), vocab, 3);   // longer than every window
        double[][] ref = new ReferenceLlama(src).logits(toks);
        float[] all = new float[toks.length * vocab];
        m.forward(Step.ofSequence(m.newCache(8), toks, 0, true), m.newWorkspace(), all);
        assertMatchesReference(ref, all, vocab, 1e-4, name + " prefill");
        // one token at a time: each decode step reads the cache the earlier ones wrote
        KvCache c = m.newCache(1);
        LlamaModel.Workspace ws = m.newWorkspace();
        float[] one = new float[toks.length * vocab], row = new float[vocab];
        for (int p = 0; p < toks.length; p++) {
            m.forward(Step.ofSequence(c, new int[]{toks[p]}, p, false), ws, row);
            System.arraycopy(row, 0, one, p * vocab, vocab);
        }
        assertMatchesReference(ref, one, vocab, 1e-4, name + " decode");
    }

    /** The window matters: the same Mistral weights without it give other logits once the sequence outgrows it. */
    @Test
    void theWindowChangesTheLogitsOnlyPastIt() {
        LlamaConfig w = config("mistral-w5");
        int[] toks = LlamaModelTest.randomTokens(12, w.vocabSize(), 9);
        double[][] windowed = new ReferenceLlama(new SynthModel(w, DType.F32, 7)).logits(toks);
        double[][] full = new ReferenceLlama(new SynthModel(w.withVariant(DecoderVariant.mistral(0)), DType.F32, 7)).logits(toks);
        for (int t = 0; t < 5; t++) assertArrayEquals(full[t], windowed[t], 1e-9, "position " + t);
        assertFalse(Arrays.equals(full[11], windowed[11]));
    }

    /** Synth model → HF folder (config.json with model_type, biases, q/k norms) → loaded back: the same config and logits. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"qwen2", "qwen3", "mistral-w5", "qwen2-w7", "gemma2", "gemma3", "phi3"})
    void roundTripsThroughAnHfFolder(String name) throws Exception {
        SynthModel src = new SynthModel(config(name), DType.BF16, 5);
        Path out = dir.resolve(name);
        HfModelWriter.write(out, src, DType.BF16);
        String json = java.nio.file.Files.readString(out.resolve("config.json"));
        String type = src.config().variant().family().equals("gemma3") ? "gemma3_text" : src.config().variant().family();
        assertTrue(json.contains("\"model_type\" : \"" + type + "\""), json);
        int vocab = src.config().vocabSize();
        int[] toks = LlamaModelTest.randomTokens(23, vocab, 4);
        float[] a = new float[toks.length * vocab], b = new float[toks.length * vocab];
        LlamaModel ms = LlamaModel.load(src, new SingleRank(), pool);
        ms.forward(Step.ofSequence(ms.newCache(8), toks, 0, true), ms.newWorkspace(), a);
        try (HfModelSource hf = HfModelSource.open(out)) {
            assertEquals(src.config().withTorchDtype("bfloat16"), hf.config());
            if (hf.config().variant().qkvBias()) assertTrue(hf.names().contains("model.layers.1.self_attn.v_proj.bias"));
            if (hf.config().variant().qkNorm()) assertArrayEquals(new long[]{hf.config().headDim()}, hf.shape("model.layers.0.self_attn.k_norm.weight"));
            LlamaModel mh = LlamaModel.load(hf, new SingleRank(), pool);
            mh.forward(Step.ofSequence(mh.newCache(8), toks, 0, true), mh.newWorkspace(), b);
        }
        // the same bf16 weights and code; how the step's rows are split over the threads may change a sum's order
        assertMatchesReference(toDouble(a, toks.length, vocab), b, vocab, 1e-6, name + " HF round trip");
    }

    /** The real shapes count the parameters their model cards state (biases and q/k norms included). */
    @Test
    void realShapesHaveTheirPublishedParameterCounts() {
        assertEquals(494_032_768L, ModelShapes.get("qwen2.5-0.5b").parameterCount());
        assertEquals(596_049_920L, ModelShapes.get("qwen3-0.6b").parameterCount());
        assertEquals(7_241_732_096L, ModelShapes.get("mistral-7b-v0.1").parameterCount());
        assertEquals(2_614_341_888L, ModelShapes.get("gemma-2-2b").parameterCount());
        assertEquals(999_885_952L, ModelShapes.get("gemma-3-1b").parameterCount());
        assertEquals(3_821_079_552L, ModelShapes.get("phi-3-mini").parameterCount());
    }

    /** The tiny shapes of each family (what `synth model --shape tiny-qwen3` writes) run and match the reference. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"tiny-qwen2", "tiny-qwen3", "tiny-mistral", "tiny-gemma2", "tiny-gemma3", "tiny-phi3"})
    void tinyShapesMatchTheReference(String shape) {
        SynthModel src = new SynthModel(ModelShapes.get(shape), DType.F32, 2);
        LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
        int vocab = src.config().vocabSize();
        int[] toks = LlamaModelTest.randomTokens(30, vocab, 8);
        float[] got = new float[toks.length * vocab];
        m.forward(Step.ofSequence(m.newCache(8), toks, 0, true), m.newWorkspace(), got);
        assertMatchesReference(new ReferenceLlama(src).logits(toks), got, vocab, 1e-4, shape);
    }

    /** A folder whose bias has the wrong length is refused naming the tensor. */
    @Test
    void refusesAMissingBias() throws Exception {
        LlamaConfig q = config("qwen2");
        Path out = dir.resolve("nobias");
        HfModelWriter.write(out, new SynthModel(q.withVariant(DecoderVariant.mistral(0)), DType.F32, 1), DType.F32);
        // the weights of a Mistral-shaped model under a qwen2 config.json: no q/k/v biases
        dev.bdserve.model.io.HfConfigIO.write(q, out.resolve("config.json"));
        var e = assertThrows(ModelFormatException.class, () -> HfModelSource.open(out));
        assertTrue(e.getMessage().contains("missing tensor 'model.layers.0.self_attn.q_proj.bias'"), e.getMessage());
    }
}
