package dev.bdserve.engine;

import dev.bdserve.TestModels;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.Step;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tokenizer.HfTokenizerJsonWriter;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The real stories260K model reproduces spec §6: token ids, text and position-0 logits, as llama2.c and as an HF folder. */
class Stories260KTest {
    static final String EXPECTED = " Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    static final int[] FIRST_IDS = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298};
    static Parallel pool;

    @BeforeAll static void start() { pool = new SpinPool(2); }
    @AfterAll static void stop() { pool.close(); }

    static void checkModel(Path path) {
        Tokenizer tok = Tokenizers.load(path);
        LlamaModel m;
        try (TensorSource src = ModelFiles.open(path)) { m = LlamaModel.load(src, new SingleRank(), pool); }
        // Position-0 logits from BOS.
        float[] logits = new float[512];
        m.forward(Step.ofSequence(m.newCache(4), new int[]{1}, 0, false), m.newWorkspace(), logits);
        assertEquals(17.0235, logits[403], 1e-3);
        assertEquals(15.4062, logits[385], 1e-3);
        assertEquals(403, Sampler.argmax(logits, 0, 512));
        // Greedy from BOS, through a model runner (TP 1) as the CLI and the engine use it.
        try (TpGroup runner = TpGroup.threads(() -> ModelFiles.open(path), TpGroup.Options.single(2))) {
            checkGeneration(runner, tok);
        }
        // The same at TP 2 and TP 4 over the threads transport (8 heads, 4 KV heads: KV replicated at TP 8 is not possible).
        for (int tp : new int[]{2, 4})
            try (TpGroup runner = TpGroup.threads(() -> ModelFiles.open(path),
                    new TpGroup.Options(tp, 1, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.REPLICATED, 0))) {
                checkGeneration(runner, tok);
            }
    }

    static void checkGeneration(ModelRunner runner, Tokenizer tok) {
        Generator g = new Generator(runner, tok, 512);
        int[] bos = tok.encode("", true);
        assertArrayEquals(new int[]{1}, bos);
        GenerationResult r = g.generate(List.of(new GenerationRequest(bos, 200, SamplingParams.greedy())), null).get(0);
        assertArrayEquals(FIRST_IDS, Arrays.copyOf(r.tokens(), 10));
        assertTrue(r.text().startsWith(EXPECTED), "got: " + r.text());
        // Stop strings cut the text before the match.
        GenerationResult s = g.generate(List.of(new GenerationRequest(bos, 200, SamplingParams.greedy().withStop(List.of(" Lily")))), null).get(0);
        assertEquals(" Once upon a time, there was a little girl named", s.text());
        assertEquals("stop", s.finishReason());
        GenerationResult l = g.generate(List.of(new GenerationRequest(bos, 3, SamplingParams.greedy())), null).get(0);
        assertEquals("length", l.finishReason());
        assertEquals(3, l.tokens().length);
    }

    @Test
    void llama2cCheckpointReproducesTheReference() {
        checkModel(TestModels.stories260K());
    }

    @Test
    void convertedHfFolderReproducesTheReference(@TempDir Path dir) {
        Path bin = TestModels.stories260K();
        try (TensorSource src = ModelFiles.open(bin)) { HfModelWriter.write(dir, src, null); }
        HfTokenizerJsonWriter.write(TestModels.require("stories260K/tok512.bin"), dir);
        checkModel(dir);
    }
}
