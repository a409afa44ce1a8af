package dev.bdserve.model.gguf;

import dev.bdserve.TestModels;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.gguf.LlamaCppLogits.Step;
import dev.bdserve.model.gguf.LlamaCppQuantize.Ftype;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * stories260K (a trained llama2.c model) written as F32 GGUF by bdserve and quantized by llama.cpp's own
 * {@code llama_model_quantize} to Q8_0, Q4_0 and Q4_K_M: on each file bdserve continues a prompt greedily with exactly
 * llama.cpp's tokens. Its rows of 64 and 172 weights are not whole K-quant super-blocks, so llama.cpp falls back
 * (Q4_K → Q5_0, Q6_K → Q8_0, and F16 for the 172-wide ffn_down): the test checks those types too.
 */
class GgufQuantizedStoriesTest {
    static final int N = 40;
    static final String PROMPT = "Once upon a time, there was a little";

    @TempDir Path dir;

    @Test
    void bdserveContinuesWithLlamaCppsTokensOnLlamaCppsQuantizations() throws Exception {
        Path bin = TestModels.stories260K(), f32 = GgufTestFiles.stories260KGguf(dir.resolve("stories260K-f32.gguf"));
        Tokenizer tok = Tokenizers.load(bin);
        Map<Ftype, Set<GgmlType>> expected = Map.of(
                Ftype.Q8_0, EnumSet.of(GgmlType.F32, GgmlType.Q8_0, GgmlType.F16),
                Ftype.Q4_0, EnumSet.of(GgmlType.F32, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16),
                Ftype.Q4_K_M, EnumSet.of(GgmlType.F32, GgmlType.Q5_0, GgmlType.Q8_0, GgmlType.F16));
        List<Ftype> types = List.of(Ftype.Q8_0, Ftype.Q4_0, Ftype.Q4_K_M);
        List<Path> files = new ArrayList<>();
        for (Ftype t : types) {
            Path f = dir.resolve("stories260K-" + t.label() + ".gguf");
            LlamaCppQuantize.quantize(f32, f, t);
            assertEquals(expected.get(t), LlamaCppQuantize.tensorTypes(f), () -> t + ": the tensor types of the file: " + LlamaCppQuantize.describeTypes(f));
            files.add(f);
        }
        Tokenizer fromGguf = Tokenizers.load(files.getFirst());
        int[] prompt = fromGguf.encode(PROMPT, true);
        assertArrayEquals(tok.encode(PROMPT, true), prompt, "the GGUF file's tokenizer");
        List<List<Step>> llama = LlamaCppLogits.llamaCpp(tok.vocabSize(), prompt, N, files.toArray(Path[]::new));

        List<String> failures = new ArrayList<>();
        for (int i = 0; i < types.size(); i++) {
            Ftype t = types.get(i);
            Path f = files.get(i);
            List<Step> steps = llama.get(i);
            List<Integer> want = new ArrayList<>();
            for (Step s : steps) want.add(s.token());
            // the logits script's argmax is llama.cpp's own greedy choice (its sampler at temperature 0)
            assertEquals(GgufTestFiles.llamaCppGreedy(f, prompt, N), want, t + ": llama.cpp's greedy sampler vs the argmax of its logits");
            List<Integer> got = GgufTestFiles.greedy(() -> ModelFiles.open(f), fromGguf, prompt, N);
            int eos = want.indexOf(2);
            List<Integer> expect = eos < 0 ? want : want.subList(0, eos + 1);   // bdserve stops at </s>
            assertTrue(expect.size() >= 32, t + ": llama.cpp generates " + expect.size() + " tokens before </s>, fewer than 32");
            if (!got.equals(expect)) {
                int k = 0;
                while (k < Math.min(got.size(), expect.size()) && got.get(k).equals(expect.get(k))) k++;
                Step s = steps.get(k);
                float[] ours = LlamaCppLogits.bdserve(f, prompt, steps.subList(0, k + 1))[k];
                failures.add(String.format("%s: first difference at step %d: llama.cpp %d, bdserve %s; llama.cpp's top-1 margin there %.4f, "
                                + "bdserve's logit gap between the two %.4f, max |Δlogit| %.3e of the range%n  llama.cpp %s%n  bdserve   %s",
                        t, k, expect.get(k), k < got.size() ? got.get(k) : "(stopped)", s.margin(),
                        k < got.size() ? ours[got.get(k)] - ours[expect.get(k)] : Float.NaN,
                        LlamaCppLogits.maxAbsDiff(s.logits(), ours) / s.range(), expect, got));
            }
            double minMargin = steps.subList(0, expect.size()).stream().mapToDouble(Step::margin).min().orElseThrow();
            System.out.printf("stories260K %s: %d tokens equal to llama.cpp's, smallest top-1 margin %.4f%n", t, expect.size(), minMargin);
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }
}
