package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class TokenizersTest {
    @Test
    void checkpointFindsTokSibling() {
        Tokenizer t = Tokenizers.load(TestModels.stories260K());
        assertInstanceOf(Llama2cTokenizer.class, t);
        assertEquals(512, t.vocabSize());
        assertTrue(((Llama2cTokenizer) t).source().endsWith("tok512.bin"));
        assertEquals(512, Tokenizers.load(TestModels.stories260K().getParent()).vocabSize()); // folder, one tok*.bin
        assertEquals(512, Tokenizers.load(TestModels.tok512()).vocabSize());
        assertEquals(32000, Tokenizers.load(TestModels.llama2().getParent()).vocabSize()); // folder with tokenizer.bin
        assertEquals(512, Tokenizers.llama2cCheckpointVocab(TestModels.stories260K()));
    }

    @Test
    void prefersTokVocabAndTokenizerJson(@TempDir Path dir) throws Exception {
        Files.copy(TestModels.stories260K(), dir.resolve("model.bin"));
        Files.copy(TestModels.tok512(), dir.resolve("tok512.bin"));
        Files.copy(TestModels.llama2(), dir.resolve("tok32000.bin"));
        assertEquals(512, Tokenizers.load(dir.resolve("model.bin")).vocabSize());
        var e = assertThrows(ModelFormatException.class, () -> Tokenizers.load(dir));
        assertTrue(e.getMessage().contains("several"), e.getMessage());
        // a file sized for the vocab without the tok<vocab> name is found by its size
        Files.move(dir.resolve("tok512.bin"), dir.resolve("tok_small.bin"));
        assertEquals(512, Tokenizers.load(dir.resolve("model.bin")).vocabSize());
        // tokenizer.json wins
        HfTokenizerJsonWriter.write(Llama2cTokenizer.load(TestModels.tok512()), dir);
        Tokenizer t = Tokenizers.load(dir.resolve("model.bin"));
        assertInstanceOf(HfTokenizer.class, t);
        assertEquals(512, t.vocabSize());
        ((HfTokenizer) t).close();
    }

    @Test
    void missingTokenizerListsWhatWasLookedFor(@TempDir Path dir) throws Exception {
        Path ckpt = dir.resolve("model.safetensors");
        Files.write(ckpt, new byte[8]);
        var e = assertThrows(ModelFormatException.class, () -> Tokenizers.load(ckpt));
        String m = e.getMessage();
        assertTrue(m.contains("tokenizer.json") && m.contains("tokenizer.bin") && m.contains("tok*.bin"), m);
        e = assertThrows(ModelFormatException.class, () -> Tokenizers.load(dir.resolve("nope")));
        assertTrue(e.getMessage().contains("nope"), e.getMessage());
    }
}
