package dev.bdserve.model.gguf;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ReferenceLlama;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.LlamaCppLogits.Step;
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
 * {@code qwen2} and {@code qwen3} GGUF files (q/k/v biases as {@code attn_q.bias}, per-head q/k norms as
 * {@code attn_q_norm.weight}, q/k rows in HF order): bdserve writes them from random models, reads them back to the same
 * weights, and llama.cpp (its own qwen2.cpp / qwen3.cpp graphs, node-llama-cpp's prebuilt library) computes the same
 * logits as bdserve on them: an independent check of the Qwen forward pass.
 */
class GgufQwenTest {
    @TempDir Path dir;

    static LlamaConfig config(String arch) {
        return switch (arch) {
            case "qwen2" -> new LlamaConfig(512, 256, 512, 2, 4, 2, 64, 256, 1e-6f, 1000000, null, false, 1, List.of(2), "float32",
                    DecoderVariant.qwen2(0));
            // head_dim 64 with hidden 128 and 4 heads: q_proj [256, 128]
            case "qwen3" -> new LlamaConfig(512, 128, 512, 2, 4, 2, 64, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
                    DecoderVariant.qwen3(0));
            default -> throw new IllegalArgumentException(arch);
        };
    }

    Path write(String arch) {
        LlamaConfig c = config(arch);
        Path sub = dir.resolve(arch);
        SynthTokenizer.write(sub, c.vocabSize());
        Tokenizer tok = Tokenizers.load(sub.resolve("tokenizer.bin"));
        Path f = sub.resolve(arch + "-f32.gguf");
        GgufModelWriter.write(f, new SynthModel(c, DType.F32, 3), GgmlType.F32, "synth-" + arch, w -> GgufTokenizers.writeMetadata(tok, w));
        return f;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2", "qwen3"})
    void readsBackTheWeightsItWrote(String arch) {
        Path f = write(arch);
        LlamaConfig c = config(arch);
        try (TensorSource g = ModelFiles.open(f); SynthModel s = new SynthModel(c, DType.F32, 3)) {
            assertEquals(c.variant(), g.config().variant());
            assertEquals(c.headDim(), g.config().headDim());
            for (String name : s.names()) {
                if (s.shape(name).length == 1) assertArrayEquals(s.vector(name), g.vector(name), name);
                else assertArrayEquals(s.matrix(name).toFloats(), g.matrix(name).toFloats(), name);   // q/k rows not permuted
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2", "qwen3"})
    void llamaCppComputesBdservesLogits(String arch) {
        Path f = write(arch);
        int[] prompt = GgufLlamaCppParityTest.prompt(8, 5);
        int steps = 12;
        List<Step> llama = LlamaCppLogits.llamaCpp(config(arch).vocabSize(), prompt, steps, f).getFirst();
        float[][] ours = LlamaCppLogits.bdserve(f, prompt, llama);
        double[][] ref;
        try (TensorSource src = ModelFiles.open(f)) {
            ref = new ReferenceLlama(src).logits(LlamaCppLogits.fedTokens(prompt, llama));
        }
        for (int s = 0; s < steps; s++) {
            double range = llama.get(s).range();
            double vsLlama = LlamaCppLogits.maxAbsDiff(llama.get(s).logits(), ours[s]) / range;
            double own = 0;
            for (int v = 0; v < ours[s].length; v++) own = Math.max(own, Math.abs(ours[s][v] - ref[prompt.length - 1 + s][v]));
            System.out.printf("%s step %d: |Δ|/range vs llama.cpp %.2e, vs fp64 reference %.2e%n", arch, s, vsLlama, own / range);
            assertTrue(vsLlama < 1e-3, arch + " step " + s + ": bdserve differs from llama.cpp by " + vsLlama + " of the range");
            assertTrue(own / range < 1e-5, arch + " step " + s + ": bdserve differs from the fp64 reference by " + own / range);
        }
    }

    @Test
    void refusesAWindowedModel() {
        LlamaConfig m = config("qwen2").withVariant(DecoderVariant.mistral(8));
        var e = assertThrows(IllegalArgumentException.class, () -> GgufModelWriter.write(dir.resolve("m.gguf"), new SynthModel(m, DType.F32, 1),
                GgmlType.F32, "m", null));
        assertTrue(e.getMessage().contains("mistral model's sliding window 8 cannot be written"), e.getMessage());
    }
}
