package dev.bdserve.model.gguf;

import dev.bdserve.TestModels;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

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
        Path bin = TestModels.stories260K(), gguf = GgufTestFiles.stories260KGguf(dir.resolve("stories260K-f32.gguf"));
        Tokenizer tok = Tokenizers.load(bin);
        Tokenizer fromGguf = Tokenizers.load(gguf);
        int[] prompt = tok.encode("Once upon a time, there was a little", true);
        assertArrayEquals(prompt, fromGguf.encode("Once upon a time, there was a little", true), "the GGUF file's tokenizer");
        int n = 48;
        List<Integer> viaLlamaCpp = GgufTestFiles.llamaCppGreedy(gguf, prompt, n);
        assertEquals(viaLlamaCpp, GgufTestFiles.greedy(() -> ModelFiles.open(gguf), fromGguf, prompt, n), "bdserve on the GGUF file");
        assertEquals(viaLlamaCpp, GgufTestFiles.greedy(() -> ModelFiles.open(bin), tok, prompt, n), "bdserve on the llama2.c checkpoint");
    }
}
