package dev.bdserve.tokenizer;

import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufTestFiles;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Tokenizers read from llama.cpp's vocabulary files give llama.cpp's own tokens for its tokenizer test texts
 * ({@code models/ggml-vocab-NAME.gguf.inp} and {@code .out}, written by llama.cpp's test-tokenizer-0: no BOS, no
 * special-token parsing), and decode them back to the text.
 */
class GgufVocabTest {
    static final String SEPARATOR = "\n__ggml_vocab_test__\n";

    @ParameterizedTest
    @ValueSource(strings = {"llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2"})
    void llamaCppsTokensForItsTestTexts(String name) throws Exception {
        Path gguf = GgufTestFiles.vocab(name);
        Tokenizer t;
        try (GgufFile f = GgufFile.open(gguf)) {
            t = GgufTokenizers.fromMetadata(gguf.toString(), f.metadata());
        }
        String inp = Files.readString(Path.of(gguf + ".inp"), StandardCharsets.UTF_8);
        List<String> texts = new ArrayList<>(Arrays.asList(inp.split(SEPARATOR, -1)));
        if (texts.getLast().isEmpty()) texts.removeLast();                  // the file ends with a separator
        List<String> outs = Files.readAllLines(Path.of(gguf + ".out"), StandardCharsets.UTF_8);
        assertEquals(texts.size(), outs.size(), "test cases in " + gguf);
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            String line = outs.get(i).trim();
            int[] want = line.isEmpty() ? new int[0] : Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray();
            int[] got = t.encode(texts.get(i), false);
            if (!Arrays.equals(want, got))
                failures.add("case " + i + " '" + texts.get(i).replace("\n", "\\n") + "': llama.cpp " + Arrays.toString(want) + ", bdserve " + Arrays.toString(got));
        }
        assertEquals(List.of(), failures, failures.size() + " of " + texts.size() + " cases differ");
    }

    /**
     * With special-token parsing, as prompts are encoded: bdserve and llama.cpp agree on llama.cpp's SentencePiece
     * vocabulary files for {@link RealVocabulariesTest#corpus()}, which holds every chat template render of the server's
     * golden files. Phi-3's file (general.name "Phi3") is where llama.cpp strips the whitespace after special tokens, as
     * after each {@code <|user|>}, {@code <|end|>} and {@code <|assistant|>} of its template's renders; it names no
     * end-of-turn token, and both stop at its {@code <|end|>} (32007) besides the EOS.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama-spm", "phi-3"})
    void promptsWithSpecialTokensAsLlamaCpp(String name) throws Exception {
        Path gguf = GgufTestFiles.vocab(name);
        Tokenizer t = Tokenizers.load(gguf);
        List<String> texts = RealVocabulariesTest.corpus();
        LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(gguf, t.vocabSize(), texts);
        for (int id : t.eosIds()) assertTrue(llama.eog().contains(id), "bdserve stops at " + id + ", llama.cpp only at " + llama.eog());
        if (name.equals("phi-3")) assertArrayEquals(new int[]{32000, 32007}, t.eosIds());
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            int[] got = t.encode(texts.get(i), false);
            if (!Arrays.equals(llama.tokens().get(i), got))
                failures.add("'" + texts.get(i).replace("\n", "\\n") + "': llama.cpp " + Arrays.toString(llama.tokens().get(i)) + ", bdserve " + Arrays.toString(got));
        }
        assertEquals(List.of(), failures, failures.size() + " of " + texts.size() + " texts differ");
    }

    /**
     * Byte-level BPE files that name no {@code tokenizer.ggml.pre} take llama.cpp's {@code default} pre-tokenizer:
     * bdserve and llama.cpp agree on llama.cpp's GPT-NeoX and Aquila vocabulary files for the llama-bpe test texts
     * (code, Unicode, whitespace runs, digits) and {@link RealVocabulariesTest#corpus()}.
     *
     * <p>One known disagreement, left out: Aquila's {@code <|endoftext|>} (id 0, its BOS and EOS) is a NORMAL token,
     * which llama.cpp promotes to CONTROL by its text (a list of end-of-generation and fill-in-the-middle spellings it
     * overrides for files it calls buggy) and so cuts out of a prompt as one token; bdserve goes by the file's token
     * types and spells it. Texts holding it are not compared for Aquila.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt-neox", "aquila"})
    void theDefaultPreTokenizerAsLlamaCpp(String name) throws Exception {
        Path gguf = GgufTestFiles.vocab(name);
        try (GgufFile f = GgufFile.open(gguf)) {
            assertEquals("gpt2", f.string("tokenizer.ggml.model", null));
            assertNull(f.string("tokenizer.ggml.pre", null), "a file without a pre-tokenizer name");
        }
        Tokenizer t = Tokenizers.load(gguf);
        String inp = Files.readString(Path.of(GgufTestFiles.vocab("llama-bpe") + ".inp"), StandardCharsets.UTF_8);
        List<String> texts = new ArrayList<>(Arrays.asList(inp.split(SEPARATOR, -1)));
        texts.removeIf(String::isEmpty);
        texts.addAll(RealVocabulariesTest.corpus());
        if (name.equals("aquila")) texts.removeIf(x -> x.contains("<|endoftext|>"));
        LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(gguf, t.vocabSize(), texts);
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            int[] got = t.encode(texts.get(i), false);
            if (!Arrays.equals(llama.tokens().get(i), got))
                failures.add("'" + texts.get(i).replace("\n", "\\n") + "': llama.cpp " + Arrays.toString(llama.tokens().get(i)) + ", bdserve " + Arrays.toString(got));
        }
        assertTrue(texts.size() > 250, texts.size() + " texts");
        assertEquals(List.of(), failures, failures.size() + " of " + texts.size() + " texts differ");
    }
}
