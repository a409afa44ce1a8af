package dev.bdserve.tokenizer;

import dev.bdserve.cli.Main;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.server.ChatTemplate;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code bdserve convert --to gguf} of a Hugging Face folder with Llama 3's byte-level BPE tokenizer (a small
 * random-weight Llama with Llama 3's vocabulary of 128,256): bdserve reads the GGUF file back with the folder's
 * tokenizer and chat template and generates what it generates on the folder; llama.cpp loads the file, tokenizes as
 * bdserve and continues a prompt with the same tokens.
 */
class ConvertBpeToGgufTest {
    @TempDir Path dir;

    @Test
    void hfFolderWithLlama3TokenizerToGguf() throws Exception {
        LlamaConfig c = new LlamaConfig(128256, 16, 32, 2, 2, 1, 8, 128, 1e-5f, 500000.0, null, true, 128000, List.of(128001), "float32");
        Path folder = dir.resolve("model");
        HfModelWriter.write(folder, new SynthModel(c, DType.F32, 11), DType.F32);
        Path tok = HfBpeFolders.make("llama-bpe", dir);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) Files.copy(tok.resolve(f), folder.resolve(f));

        Path gguf = dir.resolve("model.gguf");
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new Main());
        cl.setErr(new PrintWriter(err, true));
        assertEquals(0, cl.execute("convert", "--model", folder.toString(), "--to", "gguf", "--type", "f32", "--out", gguf.toString()), err.toString());

        Tokenizer fromFolder = Tokenizers.load(folder), fromGguf = Tokenizers.load(gguf);
        assertEquals(List.of(128256, 128000, 128001), List.of(fromGguf.vocabSize(), fromGguf.bosId(), fromGguf.eosIds()[0]));
        assertEquals(List.of(fromFolder.vocabSize(), fromFolder.bosId(), fromFolder.eosIds()[0]),
                List.of(fromGguf.vocabSize(), fromGguf.bosId(), fromGguf.eosIds()[0]));
        List<String> texts = GgufBpeVocabTest.texts();
        for (String text : texts)
            for (boolean special : new boolean[]{true, false})
                assertArrayEquals(fromFolder.encode(text, special), fromGguf.encode(text, special), text);
        List<Map<String, Object>> chat = List.of(Map.of("role", "user", "content", "Hi!"));
        assertEquals(ChatTemplate.forModel(folder, null).render(chat, true), ChatTemplate.forModel(gguf, null).render(chat, true));

        int[] prompt = fromFolder.encode("Once upon a time, in 2024, a llama 🦙 said:", true);
        assertEquals(128000, prompt[0], "Llama 3 adds BOS");
        List<Integer> onFolder = GgufTestFiles.greedy(() -> ModelFiles.open(folder), fromFolder, prompt, 12);
        assertEquals(12, onFolder.size(), "no early stop");
        assertEquals(onFolder, GgufTestFiles.greedy(() -> ModelFiles.open(gguf), fromGguf, prompt, 12), "bdserve on the GGUF file");

        LlamaCppVocab.Result r = LlamaCppVocab.tokenize(gguf, 128256, texts);
        assertTrue(r.addBos() && !r.addEos());
        for (int i = 0; i < texts.size(); i++)
            assertArrayEquals(r.tokens().get(i), fromGguf.encode(texts.get(i), false), texts.get(i));
        assertEquals(onFolder, GgufTestFiles.llamaCppGreedy(gguf, prompt, 12), "llama.cpp on the GGUF file");
    }
}
