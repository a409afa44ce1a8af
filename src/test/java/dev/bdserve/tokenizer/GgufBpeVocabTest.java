package dev.bdserve.tokenizer;

import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.model.gguf.GgufWriter;
import dev.bdserve.server.ChatTemplate;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Hugging Face byte-level BPE folders (Llama 3's, Qwen2's and GPT-2's vocabularies, see {@link HfBpeFolders}) written
 * as GGUF gpt2 vocabularies: bdserve's tokenizer of the written file encodes as the folder's, the metadata is what
 * llama.cpp's own vocabulary files hold, and llama.cpp loading the written file tokenizes identically.
 */
class GgufBpeVocabTest {
    @TempDir Path dir;

    static final List<String> FIXED = List.of("Hello world", "", " ", "\n", "   ", "  two leading, two trailing  ",
            "tabs\tand\n\nnewlines\r\n  \n", "Ünïcödé naïve café — “quotes” «guillemets»", "東京タワー 中文字符 한국어 العربية",
            "emoji 😀🦙👩‍👩‍👧 and a lone 🦊", "1234567890 12 123 1234 3.14159 1e-9 $1,000,000", "it's don't WE'LL they'Re",
            "snake_case camelCase kebab-case CONSTANT", "def f(x):\n    return x ** 2  # square\n",
            "a <|endoftext|> b", "x<|end_of_text|>y", "mid <|begin_of_text|> text", "<|im_start|>user\nhi<|im_end|>\n",
            "<|begin_of_text|>starts with BOS", "<|endoftext|>starts with endoftext");
    static final String[] FRAGMENTS = {"the", " the", "The", "  ", " ", "\n", "\t", "\r\n", "'s", "'LL", "ü", "é", "東京", "🦙",
            "123", "4567", "0", ".", ",", "!?", "...", "<|endoftext|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>", "http://x.io",
            "\u00a0", "\u3000", "ﬁ", "Ⅻ", "x²", "-", "--", "__init__", "[PAD]", "<s>", "</s>"};

    /**
     * llama.cpp makes a token spelled {@code </s>} an end-of-generation CONTROL token by its text, whatever its type
     * (in Qwen2's vocabulary it is the ordinary token 128247), and then parses it in texts as a special token; the HF
     * library and bdserve do not, so texts holding it are left out of the comparison with llama.cpp.
     */
    static final String LLAMACPP_PROMOTED = "</s>";

    static List<String> texts() {
        List<String> texts = new ArrayList<>(FIXED);
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 150; i++) {
            StringBuilder sb = new StringBuilder();
            for (int k = 1 + r.nextInt(10); k > 0; k--) sb.append(FRAGMENTS[r.nextInt(FRAGMENTS.length)]);
            texts.add(sb.toString());
        }
        return texts;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-bpe", "qwen2", "gpt-2"})
    void hfFolderToGgufEncodesAsTheFolderAndAsLlamaCpp(String vocab) throws Exception {
        Path original = GgufTestFiles.vocab(vocab);
        Path folder = HfBpeFolders.make(vocab, dir);
        int vocabSize;
        try (GgufFile f = GgufFile.open(original)) {
            vocabSize = f.list("tokenizer.ggml.tokens").size();
        }
        Path written = dir.resolve(vocab + "-written.gguf");
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            LlamaCppVocab.withTokenizer(original, written, w -> GgufTokenizers.writeMetadata(hf, w, vocabSize));
            Tokenizer gguf = Tokenizers.load(written);

            // the metadata is llama.cpp's: tokens, merges and pre-tokenizer as in its own file of this vocabulary
            try (GgufFile w = GgufFile.open(written); GgufFile o = GgufFile.open(original)) {
                for (String k : List.of("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"))
                    assertEquals(o.metadata().get(k), w.metadata().get(k), k);
                List<Object> wt = w.list("tokenizer.ggml.token_type"), ot = o.list("tokenizer.ggml.token_type");
                for (int i = 0; i < vocabSize; i++) {
                    long want = (Long) ot.get(i);
                    if (want == GgufTokenizers.USER_DEFINED && ((String) o.list("tokenizer.ggml.tokens").get(i)).startsWith("[PAD"))
                        want = GgufTokenizers.UNUSED;                               // padding: UNUSED, as llama.cpp's converter writes it now
                    assertEquals(want, wt.get(i), "token_type " + i);
                }
                assertEquals(vocab.equals("llama-bpe"), w.bool("tokenizer.ggml.add_bos_token"));
                assertFalse(w.bool("tokenizer.ggml.add_eos_token"));
            }

            // bdserve: the GGUF file encodes, decodes and stops as the folder
            assertEquals(vocabSize, gguf.vocabSize());
            assertEquals(hf.bosId(), gguf.bosId());
            assertEquals(hf.eosId(), gguf.eosIds()[0]);
            assertEquals(vocabSize - hf.vocabSize(), gguf.unusedIds().cardinality(), "padding masked");
            List<String> texts = texts();
            List<String> failures = new ArrayList<>();
            for (String text : texts) {
                for (boolean special : new boolean[]{true, false}) {
                    int[] want = hf.encode(text, special), got = gguf.encode(text, special);
                    if (!Arrays.equals(want, got))
                        failures.add("'" + text.replace("\n", "\\n") + "' special " + special + ": folder " + Arrays.toString(want) + ", GGUF " + Arrays.toString(got));
                }
                int[] ids = hf.encode(text, true);
                if (!hf.decode(ids).equals(gguf.decode(ids))) failures.add("decode of '" + text + "'");
            }
            assertEquals(List.of(), failures, failures.size() + " differences");

            // llama.cpp loading the written file: its tokens, and whether it adds BOS / EOS
            LlamaCppVocab.Result r = LlamaCppVocab.tokenize(written, vocabSize, texts);
            assertEquals(List.of(hf.specialPrefix().length == 1, hf.specialSuffix().length == 1), List.of(r.addBos(), r.addEos()));
            assertEquals(List.of(hf.bosId(), hf.eosId()), List.of(r.bos(), r.eos()));
            int compared = 0;
            for (int i = 0; i < texts.size(); i++) {
                if (texts.get(i).contains(LLAMACPP_PROMOTED)) continue;
                compared++;
                if (!Arrays.equals(r.tokens().get(i), gguf.encode(texts.get(i), false)))
                    failures.add("'" + texts.get(i).replace("\n", "\\n") + "': llama.cpp " + Arrays.toString(r.tokens().get(i))
                            + ", bdserve " + Arrays.toString(gguf.encode(texts.get(i), false)));
            }
            assertTrue(compared > 100, compared + " texts compared");
            assertEquals(List.of(), failures, failures.size() + " differences from llama.cpp");

            // the chat template bdserve serves the folder with is the GGUF file's
            List<Map<String, Object>> chat = List.of(Map.of("role", "system", "content", "Be brief."), Map.of("role", "user", "content", "Hi!"));
            ChatTemplate fromFolder = ChatTemplate.forModel(folder, null), fromGguf = ChatTemplate.forModel(written, null);
            assertFalse(fromFolder.isPlain());
            assertEquals(fromFolder.render(chat, true), fromGguf.render(chat, true));
        }
    }

    /** Qwen2's NFC normalizer is dropped, as in llama.cpp's Qwen2 files: text not in NFC encodes differently. */
    @org.junit.jupiter.api.Test
    void qwen2sNormalizerIsDropped() throws Exception {
        Path folder = HfBpeFolders.make("qwen2", dir);
        Path written = dir.resolve("q.gguf");
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("qwen2"), written, w -> GgufTokenizers.writeMetadata(hf, w, 151936));
            Tokenizer gguf = Tokenizers.load(written);
            String composed = "caf\u00e9", decomposed = "cafe\u0301";
            assertArrayEquals(hf.encode(composed, false), gguf.encode(composed, false));
            assertArrayEquals(hf.encode(composed, false), hf.encode(decomposed, false), "the folder normalizes");
            assertFalse(Arrays.equals(hf.encode(decomposed, false), gguf.encode(decomposed, false)), "the GGUF file does not");
        }
    }

    /** Writes the folder's tokenizer into metadata and reads it back, for the small vocabulary of {@link HfTokenizerTest}. */
    static Map<String, Object> written(Path folder, int vocabSize) throws Exception {
        Path f = folder.resolveSibling(folder.getFileName() + ".gguf");
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            GgufWriter w = new GgufWriter();
            GgufTokenizers.writeMetadata(hf, w, vocabSize);
            w.write(f);
        }
        try (GgufFile g = GgufFile.open(f)) {
            return new java.util.HashMap<>(g.metadata());
        }
    }

    static Path folder(Path dir, String name, com.fasterxml.jackson.databind.node.ObjectNode json, String config) throws Exception {
        Path d = java.nio.file.Files.createDirectories(dir.resolve(name));
        new com.fasterxml.jackson.databind.ObjectMapper().writeValue(d.resolve("tokenizer.json").toFile(), json);
        if (config != null) java.nio.file.Files.writeString(d.resolve("tokenizer_config.json"), config);
        return d;
    }

    @org.junit.jupiter.api.Test
    void aSmallVocabularyPaddedToTheModel() throws Exception {
        var json = HfTokenizerTest.byteLevelJson();                               // plus a non-special added token
        ((com.fasterxml.jackson.databind.node.ArrayNode) json.get("added_tokens")).addObject().put("id", 263).put("content", "<x>")
                .put("single_word", false).put("lstrip", false).put("rstrip", false).put("normalized", true).put("special", false);
        Path d = folder(dir, "small", json, "{\"chat_template\": \"{{ messages[0]['content'] }}\"}");
        Map<String, Object> md = written(d, 300);
        assertEquals("gpt-2", md.get("tokenizer.ggml.pre"));
        List<?> tokens = (List<?>) md.get("tokenizer.ggml.tokens"), types = (List<?>) md.get("tokenizer.ggml.token_type");
        assertEquals(300, tokens.size());
        assertEquals(List.of("<|begin_of_text|>", "<|end_of_text|>", "<x>", "[PAD264]"), tokens.subList(261, 265));
        assertEquals(List.of(GgufTokenizers.CONTROL, GgufTokenizers.CONTROL, GgufTokenizers.USER_DEFINED, GgufTokenizers.UNUSED),
                types.subList(261, 265));
        assertEquals(List.of("Ġ t", "h e", "Ġt he", "Ã ©", "Ġ w"), md.get("tokenizer.ggml.merges"));
        assertEquals(List.of(261L, 262L, true, false, "{{ messages[0]['content'] }}"), List.of(md.get("tokenizer.ggml.bos_token_id"),
                md.get("tokenizer.ggml.eos_token_id"), md.get("tokenizer.ggml.add_bos_token"), md.get("tokenizer.ggml.add_eos_token"),
                md.get("tokenizer.chat_template")));
        Tokenizer t = GgufTokenizers.fromMetadata("small.gguf", md);
        List<String> texts = List.of("the theé", " wo", "<|begin_of_text|>the<|end_of_text|>", "😀é", "", "a<x>b <x> the<x>", "x<|end_of_text|>");
        Path forLlamaCpp = dir.resolve("small-llamacpp.gguf");
        try (HfTokenizer hf = HfTokenizer.load(d)) {
            for (String text : texts)
                for (boolean special : new boolean[]{true, false})
                    assertArrayEquals(hf.encode(text, special), t.encode(text, special), text);
            assertArrayEquals(new int[]{'a', 263, 'b', ' ', 263, 258, 263}, t.encode("a<x>b <x> the<x>", false));
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("gpt-2"), forLlamaCpp, w -> GgufTokenizers.writeMetadata(hf, w, 300));
        }
        LlamaCppVocab.Result r = LlamaCppVocab.tokenize(forLlamaCpp, 300, texts);
        assertEquals(List.of(261, 262, true, false), List.of(r.bos(), r.eos(), r.addBos(), r.addEos()));
        for (int i = 0; i < texts.size(); i++) {
            assertArrayEquals(r.tokens().get(i), t.encode(texts.get(i), false), "llama.cpp: " + texts.get(i));
            if (!texts.get(i).startsWith("<|begin_of_text|>"))                 // llama.cpp would add a second BOS
                assertArrayEquals(r.withSpecials(i), t.encode(texts.get(i), true), "llama.cpp: " + texts.get(i));
        }
        java.util.BitSet pad = new java.util.BitSet();
        pad.set(264, 300);
        assertEquals(pad, t.unusedIds());
        assertThrows(dev.bdserve.model.ModelFormatException.class, () -> written(d, 262), "a model smaller than the tokenizer");
    }

    /** What a GGUF gpt2 vocabulary cannot say is refused, naming the file and the part. */
    @org.junit.jupiter.api.Test
    void whatGgufCannotExpressIsRefused() throws Exception {
        var f = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance;
        record Case(String name, java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> change, String config, String message) {}
        String deepseek = "[\\r\\n]|\\s?\\p{L}+|\\s?\\p{P}+";
        List<Case> cases = List.of(
                new Case("regex", j -> {
                    var steps = j.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
                    var split = steps.addObject().put("type", "Split");
                    split.putObject("pattern").put("Regex", deepseek);
                    split.put("behavior", "Isolated").put("invert", false);
                    steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", false);
                }, null, "pre-tokenizer regex '" + deepseek + "' is not one of those llama.cpp names that bdserve supports (default, gpt-2, llama-bpe, qwen2)"),
                new Case("digits", j -> {
                    var steps = j.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
                    steps.addObject().put("type", "Digits").put("individual_digits", true);
                    steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", true);
                }, null, "pre-tokenizer step {\"type\":\"Digits\",\"individual_digits\":true} cannot be written"),
                new Case("prefix-space", j -> ((com.fasterxml.jackson.databind.node.ObjectNode) j.get("pre_tokenizer")).put("add_prefix_space", true),
                        null, "cannot be written to a GGUF gpt2 vocabulary (supported: Split by a regex, Isolated, then ByteLevel without add_prefix_space)"),
                new Case("normalizer", j -> j.putObject("normalizer").put("type", "Lowercase"), null,
                        "normalizer Lowercase cannot be written to a GGUF gpt2 vocabulary (only none or NFC)"),
                new Case("lstrip", j -> ((com.fasterxml.jackson.databind.node.ObjectNode) j.get("added_tokens").get(1)).put("lstrip", true), null,
                        "added token '<|end_of_text|>' has lstrip true, which a GGUF gpt2 vocabulary cannot express"),
                new Case("ignore-merges", j -> ((com.fasterxml.jackson.databind.node.ObjectNode) j.get("model")).put("ignore_merges", true), null,
                        "model.ignore_merges is true but llama.cpp's gpt-2 pre-tokenizer merges every pre-token"),
                new Case("merge-space", j -> {                                       // merges as pairs, one of a piece with a space
                    var model = (com.fasterxml.jackson.databind.node.ObjectNode) j.get("model");
                    var pairs = f.arrayNode();
                    for (var m : model.get("merges")) pairs.addArray().add(m.asText().split(" ")[0]).add(m.asText().split(" ")[1]);
                    pairs.addArray().add("a b").add("c");
                    ((com.fasterxml.jackson.databind.node.ObjectNode) model.get("vocab")).put("a b", 263).put("a bc", 264);
                    model.set("merges", pairs);
                }, null, "merge [\"a b\",\"c\"] has an empty piece or one with a space"),
                new Case("roberta", j -> {
                    var rp = j.putObject("post_processor").put("type", "RobertaProcessing");
                    rp.putArray("sep").add("<|end_of_text|>").add(262);
                    rp.putArray("cls").add("<|begin_of_text|>").add(261);
                    rp.put("trim_offsets", true).put("add_prefix_space", false);
                }, null,
                        "post-processor RobertaProcessing cannot be written to a GGUF gpt2 vocabulary"),
                new Case("two-before", j -> ((com.fasterxml.jackson.databind.node.ArrayNode) j.get("post_processor").get("single")).insert(0,
                        f.objectNode().set("SpecialToken", f.objectNode().put("id", "<|end_of_text|>").put("type_id", 0))), null,
                        "encoding adds [262, 261] before the text; a GGUF vocabulary can add only its BOS (262)"),
                new Case("other-eos", j -> { }, "{\"eos_token\": \"Ġw\", \"add_eos_token\": true}", null),
                // a SentencePiece folder goes to the llama writer (GgufSpmVocab), which refuses a model vocabulary too small for it
                new Case("sentencepiece", null, null, "the tokenizer has 512 tokens, more than the model's vocabulary of 300"));
        for (Case c : cases) {
            Path d;
            if (c.change() == null) {
                d = dir.resolve(c.name());
                HfTokenizerJsonWriter.write(Llama2cTokenizer.load(TestModels.tok512()), d);
            } else {
                var json = HfTokenizerTest.byteLevelJson();
                c.change().accept(json);
                d = folder(dir, c.name(), json, c.config());
            }
            if (c.message() == null) {                                            // an EOS the post-processor appends is the EOS written
                Map<String, Object> md = written(d, 300);
                assertEquals(List.of(260L, true), List.of(md.get("tokenizer.ggml.eos_token_id"), md.get("tokenizer.ggml.add_eos_token")), c.name());
                continue;
            }
            var e = assertThrows(dev.bdserve.model.ModelFormatException.class, () -> written(d, 300), c.name());
            assertTrue(e.getMessage().startsWith("tokenizer file " + d.resolve("tokenizer.json") + ": ") && e.getMessage().contains(c.message()),
                    c.name() + ": " + e.getMessage());
        }
    }

    /**
     * A Llama-3-Instruct-like folder ending generation at three tokens: the one tokenizer_config.json names is the EOS,
     * the others become the end-of-turn and end-of-message ids; bdserve and llama.cpp stop at all three.
     */
    @org.junit.jupiter.api.Test
    void severalEndOfGenerationIds() throws Exception {
        Path folder = HfBpeFolders.make("llama-bpe", dir);
        java.nio.file.Files.writeString(folder.resolve("generation_config.json"), "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009]}");
        java.nio.file.Files.writeString(folder.resolve("tokenizer_config.json"), "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\"}");
        Path written = dir.resolve("instruct.gguf");
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            assertEquals(128009, hf.eosId());
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("llama-bpe"), written, w -> GgufTokenizers.writeMetadata(hf, w, 128256));
            try (GgufFile f = GgufFile.open(written)) {
                assertEquals(List.of(128009L, 128001L, 128008L), List.of(f.longValue("tokenizer.ggml.eos_token_id"),
                        f.longValue("tokenizer.ggml.eot_token_id"), f.longValue("tokenizer.ggml.eom_token_id")));
            }
            Tokenizer gguf = Tokenizers.load(written);
            assertEquals(sorted(hf.eosIds()), sorted(gguf.eosIds()));
            LlamaCppVocab.Result r = LlamaCppVocab.tokenize(written, 128256, List.of("x"));
            assertTrue(r.eog().containsAll(List.of(128001, 128008, 128009)), "llama.cpp's end-of-generation ids " + r.eog());
        }
        java.nio.file.Files.writeString(folder.resolve("generation_config.json"), "{\"eos_token_id\": [128001, 128008, 128009, 128002]}");
        try (HfTokenizer hf = HfTokenizer.load(folder)) {
            var e = assertThrows(dev.bdserve.model.ModelFormatException.class, () -> GgufTokenizers.writeMetadata(hf, new GgufWriter(), 128256));
            assertTrue(e.getMessage().endsWith(": generation ends at tokens [128001, 128008, 128009, 128002]; a GGUF vocabulary names at most "
                    + "three (eos, eot, eom)"), e.getMessage());
        }
    }

    static List<Integer> sorted(int[] a) { return Arrays.stream(a).sorted().boxed().toList(); }
}
