package dev.bdserve.model.gguf;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.Rope;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Llama 3.1 / 3.2 long-context rope in GGUF files: the {@code rope_freqs.weight} factors llama.cpp's converter writes,
 * read back as HF's llama3 rope_scaling where they match it, and run by llama.cpp and bdserve alike.
 */
class GgufRopeScalingTest {
    @TempDir Path dir;

    static LlamaConfig withScaling(LlamaConfig.RopeScaling s, int headDim) {
        return new LlamaConfig(300, 64, 96, 2, 4, 2, headDim, 1024, 1e-5f, 500000, s, false, 1, List.of(2), "float32");
    }

    @Test
    void llama3FactorsGiveHfsInverseFrequencies() {
        for (var s : List.of(new LlamaConfig.RopeScaling.Llama3(32, 1, 4, 8192), new LlamaConfig.RopeScaling.Llama3(8, 1, 4, 64),
                new LlamaConfig.RopeScaling.Llama3(4, 2, 3, 512))) {
            for (int headDim : new int[]{16, 32, 64}) {
                LlamaConfig hf = withScaling(s, headDim);
                LlamaConfig gguf = withScaling(new LlamaConfig.RopeScaling.Factors(s.frequencyFactors(headDim, hf.ropeTheta())), headDim);
                float[] want = Rope.inverseFrequencies(hf), got = Rope.inverseFrequencies(gguf);
                for (int i = 0; i < want.length; i++)
                    assertEquals(want[i], got[i], 2e-7 * want[i], s + " head_dim " + headDim + " frequency " + i);
                float[] plain = Rope.inverseFrequencies(withScaling(null, headDim));
                assertNotEquals(plain[want.length - 1], got[want.length - 1], "the lowest frequency is rescaled");
            }
        }
    }

    @Test
    void aLlama3ModelRoundTripsThroughGguf() {
        LlamaConfig c = withScaling(new LlamaConfig.RopeScaling.Llama3(32, 1, 4, 8192), 16);
        Path p = dir.resolve("m.gguf");
        GgufModelWriter.write(p, new SynthModel(c, DType.F32, 3), GgmlType.F32, "test", null);
        try (GgufFile f = GgufFile.open(p)) {
            assertArrayEquals(new long[]{8}, f.tensor("rope_freqs.weight").dims());
        }
        try (GgufModelSource g = GgufModelSource.open(p)) {
            assertEquals(c, g.config(), "Llama 3.x factors read back as the llama3 rope_scaling");
        }
    }

    @Test
    void otherFactorsAreKeptAsFactors() {
        var s = new LlamaConfig.RopeScaling.Llama3(8, 1, 4, 64);
        LlamaConfig c = withScaling(s, 16);
        Path p = dir.resolve("m.gguf");
        GgufModelWriter.write(p, new SynthModel(c, DType.F32, 3), GgmlType.F32, "test", null);
        try (GgufModelSource g = GgufModelSource.open(p)) {
            assertEquals(new LlamaConfig.RopeScaling.Factors(s.frequencyFactors(16, c.ropeTheta())), g.config().ropeScaling());
        }
    }

    @Test
    void badFactorTensorsAreRefusedByName() {
        LlamaConfig c = withScaling(null, 16);
        for (float[] factors : new float[][]{{1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, -2}, {1, 1, 1, 1, 1, 1, 1, Float.NaN}}) {
            Path bad = dir.resolve("bad.gguf");
            byte[] b = new byte[4 * factors.length];
            GgmlCodec.quantize(GgmlType.F32, factors, 0, factors.length, b, 0);
            // the tokenizer hook is the one place a caller adds to the file: here, a rope_freqs tensor of its own
            GgufModelWriter.write(bad, new SynthModel(c, DType.F32, 3), GgmlType.F32, "test",
                    w -> w.addTensor("rope_freqs.weight", new long[]{factors.length}, GgmlType.F32, b));
            var e = assertThrows(ModelFormatException.class, () -> GgufModelSource.open(bad).close());
            assertTrue(e.getMessage().contains(bad.toString()) && e.getMessage().contains("rope_freqs.weight"), e.getMessage());
        }
    }

    /**
     * A model whose rope is rescaled from position 64 on (llama3 with an original context of 64, so most frequencies
     * change): llama.cpp and bdserve continue a prompt with the same greedy tokens on the GGUF file, and bdserve on
     * the source model too.
     */
    @Test
    void llamaCppAppliesTheSameFactors() throws Exception {
        LlamaConfig c = withScaling(new LlamaConfig.RopeScaling.Llama3(8, 1, 4, 64), 16);
        SynthModel src = new SynthModel(c, DType.F32, 11);
        SynthTokenizer.write(dir, c.vocabSize());
        Tokenizer tok = Tokenizers.load(dir.resolve("tokenizer.bin"));
        Path gguf = dir.resolve("scaled.gguf");
        GgufModelWriter.write(gguf, src, GgmlType.F32, "scaled", w -> GgufTokenizers.writeMetadata(tok, w));
        int[] prompt = new int[80];
        prompt[0] = 1;
        for (int i = 1; i < prompt.length; i++) prompt[i] = 3 + (i * 37) % 290;
        int n = 24;
        List<Integer> llamaCpp = GgufTestFiles.llamaCppGreedy(gguf, prompt, n);
        assertEquals(llamaCpp, GgufTestFiles.greedy(() -> ModelFiles.open(gguf), tok, prompt, n), "bdserve on the GGUF file");
        assertEquals(llamaCpp, GgufTestFiles.greedy(() -> src, tok, prompt, n), "bdserve on the source model");
    }
}
