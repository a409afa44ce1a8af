package dev.bdserve.tokenizer;

import dev.bdserve.cli.Main;
import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.server.ChatTemplate;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

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
        List<Integer> onFolder = greedy(() -> ModelFiles.open(folder), fromFolder, prompt, 12);
        assertEquals(12, onFolder.size(), "no early stop");
        assertEquals(onFolder, greedy(() -> ModelFiles.open(gguf), fromGguf, prompt, 12), "bdserve on the GGUF file");

        LlamaCppVocab.Result r = LlamaCppVocab.tokenize(gguf, 128256, texts);
        assertTrue(r.addBos() && !r.addEos());
        for (int i = 0; i < texts.size(); i++)
            assertArrayEquals(r.tokens().get(i), fromGguf.encode(texts.get(i), false), texts.get(i));
        assertEquals(onFolder, llamaCppGreedy(gguf, prompt, 12), "llama.cpp on the GGUF file");
    }

    static List<Integer> greedy(Supplier<TensorSource> s, Tokenizer tok, int[] prompt, int n) {
        SamplingParams sp = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
        try (TpGroup g = TpGroup.threads(s, TpGroup.Options.single(1).withKvCache(8L << 20, 16))) {
            int[] t = new Generator(g, tok, 64).generate(List.of(new GenerationRequest(prompt, n, sp, -1)), null).getFirst().tokens();
            return Arrays.stream(t).boxed().toList();
        }
    }

    /** llama.cpp's greedy continuation, through the GGUF tests' {@code llamacpp_greedy.mjs} under node. */
    static List<Integer> llamaCppGreedy(Path gguf, int[] prompt, int n) throws Exception {
        Path script = Path.of(ConvertBpeToGgufTest.class.getResource("/dev/bdserve/model/gguf/llamacpp_greedy.mjs").toURI());
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
