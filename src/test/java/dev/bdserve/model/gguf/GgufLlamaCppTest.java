package dev.bdserve.model.gguf;

import dev.bdserve.TestModels;
import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * stories260K written as GGUF by bdserve: llama.cpp (node-llama-cpp's prebuilt library) loads it and continues a
 * prompt greedily with the same tokens as bdserve on the GGUF file and on the llama2.c checkpoint it came from. The
 * q/k rows, the tokenizer metadata and the config all have to be right for that.
 */
class GgufLlamaCppTest {
    @TempDir Path dir;

    @Test
    void llamaCppGeneratesBdservesTokensOnBdservesGguf() throws Exception {
        Path bin = TestModels.stories260K(), gguf = dir.resolve("stories260K-f32.gguf");
        Tokenizer tok = Tokenizers.load(bin);
        try (TensorSource src = ModelFiles.open(bin)) {
            GgufModelWriter.write(gguf, src, GgmlType.F32, "stories260K", w -> GgufTokenizers.writeMetadata(tok, w));
        }
        Tokenizer fromGguf = Tokenizers.load(gguf);
        int[] prompt = tok.encode("Once upon a time, there was a little", true);
        assertArrayEquals(prompt, fromGguf.encode("Once upon a time, there was a little", true), "the GGUF file's tokenizer");
        int n = 48;
        List<Integer> viaLlamaCpp = llamaCppGreedy(gguf, prompt, n);
        assertEquals(viaLlamaCpp, greedy(() -> ModelFiles.open(gguf), fromGguf, prompt, n), "bdserve on the GGUF file");
        assertEquals(viaLlamaCpp, greedy(() -> ModelFiles.open(bin), tok, prompt, n), "bdserve on the llama2.c checkpoint");
    }

    static List<Integer> greedy(Supplier<TensorSource> s, Tokenizer tok, int[] prompt, int n) {
        SamplingParams sp = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
        try (TpGroup g = TpGroup.threads(s, TpGroup.Options.single(1).withKvCache(8L << 20, 16))) {
            int[] t = new Generator(g, tok, 64).generate(List.of(new GenerationRequest(prompt, n, sp, -1)), null).getFirst().tokens();
            return Arrays.stream(t).boxed().toList();
        }
    }

    /** llama.cpp's greedy continuation, through {@code llamacpp_greedy.mjs} under node. */
    static List<Integer> llamaCppGreedy(Path gguf, int[] prompt, int n) throws Exception {
        Path script = Path.of(GgufLlamaCppTest.class.getResource("llamacpp_greedy.mjs").toURI());
        String ids = String.join(",", Arrays.stream(prompt).mapToObj(Integer::toString).toList());
        Process p = new ProcessBuilder("node", script.toString(), GgufTestFiles.root().toString(), gguf.toString(), Integer.toString(n), ids)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "node did not finish");
        assertEquals(0, p.exitValue(), "node llamacpp_greedy.mjs failed:\n" + out);
        String last = out.lines().reduce((a, b) -> b).orElse("");
        return Arrays.stream(last.trim().split(" ")).map(Integer::valueOf).toList();
    }
}
