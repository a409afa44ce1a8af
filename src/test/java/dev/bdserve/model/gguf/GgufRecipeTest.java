package dev.bdserve.model.gguf;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.LlamaCppLogits.Step;
import dev.bdserve.model.gguf.LlamaCppQuantize.Ftype;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * bdserve's quantization recipes against llama.cpp's {@code llama_model_quantize} on the same F32 GGUF of a random
 * Llama: the same type for every tensor, byte-identical tensor data (so per-tensor RMSE ratio 1.000; the ratio is
 * still computed and bounded by 1.02), and llama.cpp loads bdserve's file and gives the same logits on it as on its
 * own. Models: "wide" (8 layers, rows of whole K super-blocks, so the "more bits" layers of attn_v and ffn_down
 * vary), "odd" (rows of 288 and 400 weights, tied embeddings: the Q5_0 / Q5_1 / Q8_0 / F16 fallbacks and the tied
 * output rule), "phi3" (fused attn_qkv, counted as attn_v), "qwen2" (biases, tied embeddings) and "deep" (80
 * layers: llama.cpp's 70B rule).
 */
class GgufRecipeTest {
    static final LlamaConfig WIDE = new LlamaConfig(512, 256, 768, 8, 4, 2, 64, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    /** Phi-3's fused attn_qkv and gate/up, 8 layers of whole super-blocks. */
    static final LlamaConfig PHI3 = new LlamaConfig(512, 256, 512, 8, 4, 4, 64, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32",
            DecoderVariant.phi3(2047));
    /** Qwen2's q/k/v biases (F32) and tied embeddings, rows of whole super-blocks. */
    static final LlamaConfig QWEN2 = new LlamaConfig(512, 256, 512, 4, 4, 2, 64, 256, 1e-6f, 1000000, null, true, 1, List.of(2), "float32",
            DecoderVariant.qwen2(0));
    /** 80 layers with grouped KV heads: llama.cpp takes it for a 70B model (Q5_K attn_v outside the more-bits layers). */
    static final LlamaConfig DEEP = new LlamaConfig(512, 256, 256, 80, 4, 2, 64, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    static final LlamaConfig ODD = new LlamaConfig(512, 288, 400, 3, 4, 2, 72, 256, 1e-5f, 10000, null, true, 1, List.of(2), "float32");

    @TempDir Path dir;

    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"q8_0, wide", "q4_0, wide", "q4_k_m, wide", "q5_k_m, wide", "q8_0, odd", "q4_0, odd", "q4_k_m, odd", "q5_k_m, odd",
            "q4_0, phi3", "q4_k_m, phi3", "q5_k_m, phi3", "q4_k_m, qwen2", "q5_k_m, qwen2",
            "q4_k_m, deep"})
    void matchesLlamaCppQuantize(String recipeName, String model) {
        GgufRecipe recipe = GgufRecipe.parse(recipeName);
        LlamaConfig c = switch (model) {
            case "wide" -> WIDE;
            case "phi3" -> PHI3;
            case "qwen2" -> QWEN2;
            case "deep" -> DEEP;
            default -> ODD;
        };
        SynthTokenizer.write(dir, c.vocabSize());
        Tokenizer tok = Tokenizers.load(dir.resolve("tokenizer.bin"));
        Path f32 = dir.resolve("f32.gguf"), ours = dir.resolve("bdserve-" + recipe.label() + ".gguf"),
                theirs = dir.resolve("llamacpp-" + recipe.label() + ".gguf");
        GgufModelWriter.write(f32, new SynthModel(c, DType.F32, 11), GgmlType.F32, "synth", w -> GgufTokenizers.writeMetadata(tok, w));
        LlamaCppQuantize.quantize(f32, theirs, Ftype.valueOf(recipe.name()));
        long[] reported = {0};
        try (TensorSource src = ModelFiles.open(f32)) {
            GgufModelWriter.write(ours, src, recipe, "synth", w -> GgufTokenizers.writeMetadata(tok, w), n -> reported[0] += n);
            assertEquals(GgufModelWriter.matrixWeights(src), reported[0], "weights reported to the progress bar");
        }
        try (GgufFile o = GgufFile.open(ours); GgufFile t = GgufFile.open(theirs); GgufFile orig = GgufFile.open(f32)) {
            assertEquals(types(t), types(o), recipe + " on " + model + ": tensor types, llama.cpp's vs bdserve's");
            double worst = 0;
            int identical = 0;
            for (GgufFile.TensorInfo ti : t.tensors()) {
                GgufFile.TensorInfo oi = o.tensor(ti.name());
                MemorySegment a = t.data(ti), b = o.data(oi);
                double rmseOurs = rmse(orig, ti.name(), o, oi), rmseTheirs = rmse(orig, ti.name(), t, ti);
                double ratio = rmseTheirs == 0 ? (rmseOurs == 0 ? 1 : Double.POSITIVE_INFINITY) : rmseOurs / rmseTheirs;
                worst = Math.max(worst, ratio);
                if (ratio > 1.02)
                    fail(recipe + " on " + model + ": tensor " + ti.name() + " RMSE " + rmseOurs + " vs llama.cpp's " + rmseTheirs + "; " + rowsApart(orig, ti.name(), o, oi, t, ti));
                assertEquals(-1, a.mismatch(b), recipe + " on " + model + ": tensor " + ti.name() + " (" + ti.type() + ") differs from llama.cpp's bytes");
                identical++;
            }
            System.out.printf("%s on %s: %d tensors byte-identical to llama.cpp's, types %s, worst RMSE ratio %.4f%n", recipe.label(), model,
                    identical, new java.util.TreeSet<>(types(o).values()), worst);
        }
        int[] prompt = GgufLlamaCppParityTest.prompt(6, 5);
        List<List<Step>> runs = LlamaCppLogits.llamaCpp(c.vocabSize(), prompt, 4, ours, theirs);
        for (int s = 0; s < 4; s++)
            assertArrayEquals(runs.get(1).get(s).logits(), runs.get(0).get(s).logits(), recipe + " on " + model + ": llama.cpp's logits at step " + s
                    + " on bdserve's file differ from those on its own");
    }

    @Test
    void recipesAreParsedByNameAndOthersRefused() {
        assertEquals(GgufRecipe.Q4_K_M, GgufRecipe.parse("Q4_K_M"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GgufRecipe.parse("q3_k_s"));
        assertTrue(e.getMessage().contains("'q3_k_s'") && e.getMessage().contains("q8_0, q4_0, q4_k_m, q5_k_m"), e.getMessage());
    }

    /** llama.cpp's layer pattern on 32 layers: 0–3, 28–31 and every third from 6. */
    @Test
    void moreBitsLayersAreLlamaCpps() {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 32; i++) if (GgufRecipe.useMoreBits(i, 32)) s.append(i).append(' ');
        assertEquals("0 1 2 3 6 9 12 15 18 21 24 27 28 29 30 31 ", s.toString());
    }

    static Map<String, GgmlType> types(GgufFile f) {
        Map<String, GgmlType> m = new TreeMap<>();
        for (GgufFile.TensorInfo t : f.tensors()) m.put(t.name(), t.type());
        return m;
    }

    /** RMSE of tensor {@code ti} of {@code f} dequantized, against the same tensor of the F32 original. */
    /**
     * Which rows of our tensor are off (their count, the first few, how many of their stored bytes are zero, and
     * whether llama.cpp's same rows are fine): evidence for a failure seen once in CI and not reproduced since.
     */
    static String rowsApart(GgufFile orig, String name, GgufFile ours, GgufFile.TensorInfo oi, GgufFile theirs, GgufFile.TensorInfo ti) {
        int n = Math.toIntExact(oi.elements()), cols = (int) oi.dims()[0], rows = n / cols;
        float[] x = new float[n], y = new float[n], z = new float[n];
        GgmlCodec.dequantize(orig.tensor(name).type(), orig.data(orig.tensor(name)), 0, x, 0, n);
        GgmlCodec.dequantize(oi.type(), ours.data(oi), 0, y, 0, n);
        GgmlCodec.dequantize(ti.type(), theirs.data(ti), 0, z, 0, n);
        long rowBytes = oi.type().bytes(cols);
        StringBuilder sb = new StringBuilder();
        int bad = 0;
        for (int r = 0; r < rows; r++) {
            double eo = 0, et = 0;
            for (int c = 0; c < cols; c++) {
                eo += Math.pow(x[r * cols + c] - y[r * cols + c], 2);
                et += Math.pow(x[r * cols + c] - z[r * cols + c], 2);
            }
            if (eo > 1.1 * et + 1e-12) {
                if (bad++ < 4) {
                    int zeros = 0;
                    for (long b = 0; b < rowBytes; b++) if (ours.data(oi).get(java.lang.foreign.ValueLayout.JAVA_BYTE, r * rowBytes + b) == 0) zeros++;
                    sb.append(" row ").append(r).append(" (SE ").append(eo).append(" vs ").append(et).append(", ").append(zeros).append('/')
                            .append(rowBytes).append(" zero bytes)");
                }
            }
        }
        return bad + " of " + rows + " rows off:" + sb;
    }

    static double rmse(GgufFile orig, String name, GgufFile f, GgufFile.TensorInfo ti) {
        GgufFile.TensorInfo oi = orig.tensor(name);
        int n = Math.toIntExact(ti.elements());
        float[] x = new float[n], y = new float[n];
        GgmlCodec.dequantize(oi.type(), orig.data(oi), 0, x, 0, n);
        GgmlCodec.dequantize(ti.type(), f.data(ti), 0, y, 0, n);
        double se = 0;
        for (int i = 0; i < n; i++) se += (x[i] - y[i]) * (double) (x[i] - y[i]);
        return Math.sqrt(se / n);
    }
}
