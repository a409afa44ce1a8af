package dev.bdserve.model.gguf;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ReferenceLlama;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.GgufLlamaCppParityTest.ScaledNorm;
import dev.bdserve.model.gguf.LlamaCppLogits.Step;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The Qwen2, Qwen3, Mistral, Gemma 2, Gemma 3 and Phi-3 families as GGUF files (q/k/v biases as {@code attn_q.bias}, per-head q/k norms as
 * {@code attn_q_norm.weight}, q/k rows in HF order for qwen2/qwen3; Mistral as the {@code llama} architecture, as
 * llama.cpp's converter writes it; Gemma's norms as 1 + w, its windows, soft-caps and local RoPE base as keys): bdserve writes them from random models and reads them back to the same weights;
 * llama.cpp (its own qwen2.cpp / qwen3.cpp / llama.cpp / gemma2.cpp / gemma3.cpp graphs, node-llama-cpp's prebuilt library) continues a prompt
 * greedily on each, and bdserve fed the same tokens gives its logits and, wherever llama.cpp's top-1 margin is clear,
 * its argmax; bdserve on the same model as an HF folder gives the GGUF file's logits.
 */
class GgufFamiliesTest {
    static final int STEPS = 32;
    @TempDir Path dir;

    static LlamaConfig config(String arch) {
        return switch (arch) {
            case "qwen2" -> new LlamaConfig(512, 256, 512, 2, 4, 2, 64, 256, 1e-6f, 1000000, null, false, 1, List.of(2), "float32",
                    DecoderVariant.qwen2(0));
            // head_dim 64 with hidden 128 and 4 heads: q_proj [256, 128]
            case "qwen3" -> new LlamaConfig(512, 128, 512, 2, 4, 2, 64, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
                    DecoderVariant.qwen3(0));
            // Mistral v0.2 and later: full attention
            case "mistral" -> new LlamaConfig(512, 256, 512, 2, 4, 2, 64, 256, 1e-5f, 1000000, null, false, 1, List.of(2), "float32",
                    DecoderVariant.mistral(0));
            // windows of 6 on layers 0 and 2 (shorter than the 40 tokens), soft-caps 50 / 30 (the default ones), tied
            case "gemma2" -> new LlamaConfig(512, 256, 512, 3, 4, 2, 64, 256, 1e-6f, 10000, null, true, 1, List.of(2), "float32",
                    DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 6, 50, 30, 64));
            // windows of 6 on layers 0-4 and 6, layer 5 global; local RoPE base 10000, global 1e6; q/k norms; GQA 4:1
            case "gemma3" -> new LlamaConfig(512, 256, 512, 7, 4, 1, 64, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
                    DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 6, 6, 10000, 64));
            // Phi-3 with LongRoPE (original context 256): a context of 512 runs the long factors, one of 256 the short ones
            // (llama.cpp pads a context to a multiple of 256)
            case "phi3" -> new LlamaConfig(512, 256, 512, 2, 4, 2, 64, 512, 1e-5f, 10000, longRope(), false, 1, List.of(2), "float32",
                    DecoderVariant.phi3(0));
            case "phi3-short" -> config("phi3").withMaxPositions(256);
            default -> throw new IllegalArgumentException(arch);
        };
    }

    /** LongRoPE factors for head_dim 64, short ones near 1 and long ones growing with the wavelength, as Phi-3's. */
    static LlamaConfig.RopeScaling.LongRope longRope() {
        float[] shortF = new float[32], longF = new float[32];
        for (int i = 0; i < 32; i++) {
            shortF[i] = 1 + 0.05f * i;
            longF[i] = (float) Math.pow(1.25, i);
        }
        return new LlamaConfig.RopeScaling.LongRope(shortF, longF, 256, LlamaConfig.RopeScaling.LongRope.defaultAttentionFactor(512, 256));
    }

    /** The context llama.cpp runs a case's file in: the model's own limit, which picks Phi-3's factors in both engines. */
    static int context(String arch) { return Math.min(512, config(arch).maxPositions()); }

    /** The random model, its final norm scaled as in {@link GgufLlamaCppParityTest} for clearer greedy steps. */
    static TensorSource model(String arch) {
        return new ScaledNorm(new SynthModel(config(arch), DType.F32, 3), LlamaTensorNames.FINAL_NORM, GgufLlamaCppParityTest.HEAD_GAIN);
    }

    Path write(String arch) {
        LlamaConfig c = config(arch);
        Path sub = dir.resolve(arch);
        SynthTokenizer.write(sub, c.vocabSize());
        Tokenizer tok = Tokenizers.load(sub.resolve("tokenizer.bin"));
        Path f = sub.resolve(arch + "-f32.gguf");
        // general.name must not say phi-3: llama.cpp then gives special tokens Phi-3 attributes that need its real vocabulary
        GgufModelWriter.write(f, model(arch), GgmlType.F32, "synth-model", w -> GgufTokenizers.writeMetadata(tok, w));
        return f;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3"})
    void readsBackTheWeightsItWrote(String arch) {
        Path f = write(arch);
        LlamaConfig c = config(arch);
        try (TensorSource g = ModelFiles.open(f); TensorSource s = model(arch)) {
            boolean gemma = arch.startsWith("gemma");
            // Gemma files store each norm as 1 + w, which llama.cpp (and bdserve reading them) scales by
            assertEquals(arch.equals("mistral") ? DecoderVariant.LLAMA : gemma ? c.variant().withNorm(DecoderVariant.Norm.WEIGHT) : c.variant(),
                    g.config().variant());
            assertEquals(c.headDim(), g.config().headDim());
            for (String name : s.names()) {
                if (s.shape(name).length == 1) {
                    float[] want = s.vector(name);
                    if (gemma) for (int i = 0; i < want.length; i++) want[i] += 1f;
                    assertArrayEquals(want, g.vector(name), name);
                }
                else assertArrayEquals(s.matrix(name).toFloats(), g.matrix(name).toFloats(), name);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3", "phi3-short"})
    void llamaCppsGreedyStepsAndLogitsOnEachFamily(String arch) {
        Path f = write(arch);
        Path hf = dir.resolve(arch + "-hf");
        try (TensorSource m = model(arch)) {
            HfModelWriter.write(hf, m, DType.F32);
        }
        int[] prompt = GgufLlamaCppParityTest.prompt(8, 5);
        List<Step> llama = LlamaCppLogits.llamaCpp(context(arch), config(arch).vocabSize(), prompt, STEPS, f).getFirst();
        float[][] ours = LlamaCppLogits.bdserve(f, prompt, llama), fromHf = LlamaCppLogits.bdserve(hf, prompt, llama);
        double[][] ref;
        try (TensorSource src = ModelFiles.open(f)) {
            ref = new ReferenceLlama(src).logits(LlamaCppLogits.fedTokens(prompt, llama));
        }
        int clear = 0;
        for (int s = 0; s < STEPS; s++) {
            Step st = llama.get(s);
            double range = st.range();
            double vsLlama = LlamaCppLogits.maxAbsDiff(st.logits(), ours[s]) / range;
            double vsHf = LlamaCppLogits.maxAbsDiff(fromHf[s], ours[s]) / range;
            double own = 0;
            for (int v = 0; v < ours[s].length; v++) own = Math.max(own, Math.abs(ours[s][v] - ref[prompt.length - 1 + s][v]));
            String at = String.format("%s step %d (llama.cpp's token %d, top-1 margin %.3f; bdserve's argmax %d): ", arch, s, st.token(),
                    st.margin(), LlamaCppLogits.argmax(ours[s]));
            System.out.printf("%s|Δ|/range vs llama.cpp %.2e, HF folder vs GGUF %.2e, vs fp64 reference %.2e%n", at, vsLlama, vsHf, own / range);
            assertTrue(vsLlama < 1e-3, at + "bdserve differs from llama.cpp by " + vsLlama + " of the range");
            assertTrue(own / range < 1e-5, at + "bdserve differs from the fp64 reference by " + own / range);
            assertTrue(vsHf < 1e-5, at + "bdserve's HF folder and GGUF file differ by " + vsHf + " of the range");
            if (st.margin() > GgufLlamaCppParityTest.CLEAR_MARGIN) {
                clear++;
                assertEquals(st.token(), LlamaCppLogits.argmax(ours[s]), at + "argmax differs at a clear step");
            }
        }
        assertTrue(clear >= GgufLlamaCppParityTest.MIN_CLEAR_STEPS, arch + ": only " + clear + " of " + STEPS + " steps have a top-1 margin above "
                + GgufLlamaCppParityTest.CLEAR_MARGIN);
    }

    @Test
    void refusesAWindowedModel() {
        LlamaConfig m = config("qwen2").withVariant(DecoderVariant.mistral(8));
        var e = assertThrows(IllegalArgumentException.class, () -> GgufModelWriter.write(dir.resolve("m.gguf"), new SynthModel(m, DType.F32, 1),
                GgmlType.F32, "m", null));
        assertTrue(e.getMessage().contains("mistral model's sliding window 8 cannot be written"), e.getMessage());
    }
}
