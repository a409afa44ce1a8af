package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class HfTokenizerTest {
    static final List<String> SENTENCES = List.of(
            "Hello world", "Hello, world!", "I believe the meaning of life is",
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
            "  leading and trailing spaces  ", "multiple   spaces\tand\ttabs\nnew lines\n\n",
            "emoji 😀🦊 and CJK 中文字符, Ünïcödé — “quotes”", "numbers 1234567890 and symbols #$%^&*()[]{}",
            "", " ", "a", "\n", "don't stop-believing; it's 3.14159!");

    @TempDir static Path tmp;
    static Llama2cTokenizer l2c, t512c;
    static HfTokenizer l2hf, t512hf, byteLevel;

    @BeforeAll
    static void setUp() throws Exception {
        l2c = Llama2cTokenizer.load(TestModels.llama2());
        t512c = Llama2cTokenizer.load(TestModels.tok512());
        HfTokenizerJsonWriter.write(l2c, tmp.resolve("llama2"));
        HfTokenizerJsonWriter.write(t512c, tmp.resolve("tok512"));
        l2hf = HfTokenizer.load(tmp.resolve("llama2"));
        t512hf = HfTokenizer.load(tmp.resolve("tok512").resolve("tokenizer.json"));
        Path bl = tmp.resolve("bytelevel");
        Files.createDirectories(bl);
        new ObjectMapper().writeValue(bl.resolve("tokenizer.json").toFile(), byteLevelJson());
        byteLevel = HfTokenizer.load(bl);
    }

    @AfterAll
    static void tearDown() {
        for (HfTokenizer t : new HfTokenizer[]{l2hf, t512hf, byteLevel}) if (t != null) t.close();
    }

    @Test
    void convertedLlama2MatchesKnownEncodings() {
        assertEquals(32000, l2hf.vocabSize());
        assertEquals(1, l2hf.bosId());
        assertArrayEquals(new int[]{2}, l2hf.eosIds());
        assertEquals(HfTokenizer.Spelling.SENTENCEPIECE, l2hf.spelling());
        assertArrayEquals(new int[]{1, 15043, 3186}, l2hf.encode("Hello world", true));
        assertArrayEquals(new int[]{1, 15043, 29892, 3186, 29991}, l2hf.encode("Hello, world!", true));
        assertArrayEquals(new int[]{1, 306, 4658, 278, 6593, 310, 2834, 338},
                l2hf.encode("I believe the meaning of life is", true));
        assertArrayEquals(new int[]{15043, 3186}, l2hf.encode("Hello world", false));
    }

    @Test
    void convertedTokenizersAgreeWithLlama2c() {
        for (var pair : List.of(new Object[]{l2c, l2hf}, new Object[]{t512c, t512hf})) {
            var c = (Llama2cTokenizer) pair[0];
            var hf = (HfTokenizer) pair[1];
            assertEquals(c.vocabSize(), hf.vocabSize());
            for (String s : SENTENCES) {
                for (boolean bos : new boolean[]{true, false}) {
                    int[] expected = c.encode(s, bos);
                    assertArrayEquals(expected, hf.encode(s, bos), () -> hf + " on \"" + s + "\" bos=" + bos);
                }
                int[] ids = c.encode(s, true);
                assertEquals(c.decode(ids), hf.decode(ids), () -> hf + " decode of \"" + s + "\"");
                assertEquals(s, hf.decode(ids));
                assertEquals(s, Llama2cTokenizerTest.streamDecode(hf, ids), () -> hf + " stream of \"" + s + "\"");
            }
        }
        int[] greedy = Llama2cTokenizerTest.STORIES_GREEDY;
        assertEquals(" Once upon a time, there was a little g", Llama2cTokenizerTest.streamDecode(t512hf, greedy));
    }

    @Test
    void noTruncationOnLongInputs() {
        var sb = new StringBuilder();
        for (int i = 0; sb.length() < 12_000; i++) sb.append("word").append(i % 97).append(' ');
        String text = sb.toString();
        int[] ids = l2hf.encode(text, true);
        assertTrue(ids.length > 2000, "only " + ids.length + " tokens: truncated?");
        assertArrayEquals(l2c.encode(text, true), ids);
        assertEquals(text, l2hf.decode(ids));
    }

    @Test
    void concurrentEncodingIsConsistent() throws Exception {
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            var futures = new java.util.ArrayList<java.util.concurrent.Future<Boolean>>();
            for (int i = 0; i < 64; i++) {
                String s = SENTENCES.get(i % SENTENCES.size());
                futures.add(pool.submit(() -> Arrays.equals(l2c.encode(s, true), l2hf.encode(s, true))
                        && Arrays.equals(l2c.encode(s, false), l2c.encode(s, false))));
            }
            for (var f : futures) assertTrue(f.get());
        }
    }

    @Test
    void metaspaceStyleLlama2TokenizerJson(@TempDir Path dir) throws Exception {
        // the older Llama-2 tokenizer.json layout: Metaspace pre-tokenizer and decoder instead of normalizers
        var m = new ObjectMapper();
        ObjectNode root = HfTokenizerJsonWriter.tokenizerJson(t512c);
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "▁")
                .put("prepend_scheme", "first").put("split", false);
        root.putObject("decoder").put("type", "Metaspace").put("replacement", "▁")
                .put("prepend_scheme", "first").put("split", false);
        m.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        try (var t = HfTokenizer.load(dir)) {
            assertEquals(HfTokenizer.Spelling.SENTENCEPIECE, t.spelling());
            assertEquals(1, t.bosId()); // from the added tokens, no tokenizer_config.json here
            assertArrayEquals(new int[]{2}, t.eosIds());
            for (String s : SENTENCES) {
                // Metaspace adds no ▁ when the text already starts with a space (SentencePiece and Prepend do)
                if (s.isBlank() || s.startsWith(" ")) continue;
                int[] ids = t512c.encode(s, true);
                assertArrayEquals(ids, t.encode(s, true), () -> "\"" + s + "\"");
                assertEquals(s, Llama2cTokenizerTest.streamDecode(t, ids));
            }
        }
    }

    @Test
    void convertedConfigFiles() throws Exception {
        var cfg = new ObjectMapper().readTree(tmp.resolve("llama2/tokenizer_config.json").toFile());
        assertEquals("<s>", cfg.path("bos_token").asText());
        assertEquals("</s>", cfg.path("eos_token").asText());
        assertTrue(cfg.path("add_bos_token").asBoolean());
        var tj = new ObjectMapper().readTree(tmp.resolve("llama2/tokenizer.json").toFile());
        assertTrue(tj.path("model").path("byte_fallback").asBoolean());
        assertEquals(29871, tj.path("model").path("vocab").path("▁").asInt());
        assertEquals("BPE", tj.path("model").path("type").asText());
    }

    // ------------------------------------------------------------------ byte-level BPE (Llama-3 style)

    static final int BOT = 261, EOT = 262;

    static ObjectNode byteLevelJson() {
        var f = JsonNodeFactory.instance;
        char[] enc = ByteLevelAlphabet.encoder();
        ObjectNode vocab = f.objectNode();
        for (int b = 0; b < 256; b++) vocab.put(String.valueOf(enc[b]), b);
        String[][] merges = {{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"Ã", "©"}, {"Ġ", "w"}};
        ArrayNode m = f.arrayNode();
        int id = 256;
        for (String[] mg : merges) {
            vocab.put(mg[0] + mg[1], id++);
            m.add(mg[0] + " " + mg[1]);
        }
        ObjectNode root = f.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<|begin_of_text|>", "<|end_of_text|>"};
        for (int i = 0; i < 2; i++) {
            added.addObject().put("id", BOT + i).put("content", specials[i]).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        ObjectNode post = root.putObject("post_processor").put("type", "TemplateProcessing");
        post.putArray("single").add(f.objectNode().set("SpecialToken", f.objectNode().put("id", specials[0]).put("type_id", 0)))
                .add(f.objectNode().set("Sequence", f.objectNode().put("id", "A").put("type_id", 0)));
        post.putArray("pair").add(f.objectNode().set("SpecialToken", f.objectNode().put("id", specials[0]).put("type_id", 0)))
                .add(f.objectNode().set("Sequence", f.objectNode().put("id", "A").put("type_id", 0)))
                .add(f.objectNode().set("Sequence", f.objectNode().put("id", "B").put("type_id", 1)));
        ObjectNode st = post.putObject("special_tokens").putObject(specials[0]).put("id", specials[0]);
        st.putArray("ids").add(BOT);
        st.putArray("tokens").add(specials[0]);
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true)
                .put("use_regex", true);
        ObjectNode model = root.putObject("model").put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", false);
        model.set("vocab", vocab);
        model.set("merges", m);
        return root;
    }

    @Test
    void byteLevelEncodeDecode() {
        assertEquals(HfTokenizer.Spelling.BYTE_LEVEL, byteLevel.spelling());
        assertEquals(263, byteLevel.vocabSize());
        assertEquals(BOT, byteLevel.bosId());
        assertArrayEquals(new int[]{EOT}, byteLevel.eosIds());
        // "the" → t + he ; " theé" → Ġthe + é(Ã©)
        assertArrayEquals(new int[]{'t', 257, 258, 259}, byteLevel.encode("the theé", false));
        assertArrayEquals(new int[]{BOT, 't', 257, 258, 259}, byteLevel.encode("the theé", true));
        assertEquals("the theé", byteLevel.decode(new int[]{BOT, 't', 257, 258, 259, EOT}));
        assertEquals("the theé", Llama2cTokenizerTest.streamDecode(byteLevel, new int[]{BOT, 't', 257, 258, 259, EOT}));
        // special tokens in the text are recognised
        assertArrayEquals(new int[]{BOT, 't', 257, EOT}, byteLevel.encode("<|begin_of_text|>the<|end_of_text|>", false));
        // no leading-space stripping for byte-level tokenizers
        assertArrayEquals(new int[]{260, 'o'}, byteLevel.encode(" wo", false));
        assertEquals(" wo", Llama2cTokenizerTest.streamDecode(byteLevel, new int[]{BOT, 260, 'o'}));
    }

    @Test
    void byteLevelStreamsSplitCharacters() {
        int[] ids = byteLevel.encode("😀é", false);
        assertArrayEquals(new int[]{0xF0, 0x9F, 0x98, 0x80, 259}, ids);
        var sd = byteLevel.newStreamDecoder();
        assertEquals("", sd.push(0xF0));
        assertEquals("", sd.push(0x9F));
        assertEquals("", sd.push(0x98));
        assertEquals("😀", sd.push(0x80));
        assertEquals("", sd.push(0xC3)); // é split over two byte tokens
        assertEquals("é", sd.push(0xA9));
        assertEquals("", sd.push(BOT));
        assertEquals("", sd.flush());
        assertEquals("😀é", byteLevel.decode(ids));
    }

    @Test
    void errorsNameTheFile(@TempDir Path dir) throws Exception {
        var e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        Files.writeString(dir.resolve("tokenizer.json"), "{ not json");
        e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("not valid JSON"), e.getMessage());
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": 3}");
        e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        // valid JSON that the Rust library rejects (a merge of unknown tokens)
        Files.writeString(dir.resolve("tokenizer.json"),
                "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"x y\"]}}");
        e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> l2hf.decode(new int[]{32000}));
        assertThrows(IllegalArgumentException.class, () -> l2hf.newStreamDecoder().push(-1));
    }

    @Test
    void bosFromPostProcessorTemplate(@TempDir Path dir) throws Exception {
        String json = new ObjectMapper().writeValueAsString(byteLevelJson()).replace("<|begin_of_text|>", "<|go|>");
        Files.writeString(dir.resolve("tokenizer.json"), json);
        try (var t = HfTokenizer.load(dir)) {
            assertEquals(BOT, t.bosId());
            assertArrayEquals(new int[]{BOT, 't', 257}, t.encode("the", true));
            assertArrayEquals(new int[]{'t', 257}, t.encode("the", false));
        }
    }

    @Test
    void eosFromGenerationConfig(@TempDir Path dir) throws Exception {
        var m = new ObjectMapper();
        m.writeValue(dir.resolve("tokenizer.json").toFile(), byteLevelJson());
        Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 261, \"eos_token_id\": [262, 5]}");
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"bos_token\": {\"content\": \"<|begin_of_text|>\"}, \"eos_token\": \"<|end_of_text|>\"}");
        try (var t = HfTokenizer.load(dir)) {
            assertEquals(BOT, t.bosId());
            assertEquals(List.of(262, 5), Arrays.stream(t.eosIds()).boxed().toList());
        }
    }

    /**
     * encode(text, true) adds what HF adds with add_special_tokens: the post-processor's specials around the text,
     * tokenizer_config.json's add_bos_token / add_eos_token overriding them; no post-processor template, nothing.
     */
    @Test
    void specialTokensAsThePostProcessorAndConfigSay(@TempDir Path dir) throws Exception {
        var m = new ObjectMapper();
        int[] the = {'t', 257};
        record Case(String name, String postProcessor, String config, int[] want) {}
        ObjectNode template = byteLevelJson();
        ObjectNode both = template.deepCopy();                                    // <|begin_of_text|> A <|end_of_text|>
        ((ArrayNode) both.path("post_processor").path("single")).add(JsonNodeFactory.instance.objectNode()
                .set("SpecialToken", JsonNodeFactory.instance.objectNode().put("id", "<|end_of_text|>").put("type_id", 0)));
        ObjectNode noTemplate = template.deepCopy();                              // Qwen2, GPT-2: a ByteLevel post-processor
        noTemplate.putObject("post_processor").put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", false);
        for (Case c : List.of(
                new Case("template", m.writeValueAsString(template), "{}", new int[]{BOT, 't', 257}),
                new Case("template, add_bos_token false", m.writeValueAsString(template), "{\"add_bos_token\": false}", the),
                new Case("template, add_eos_token true", m.writeValueAsString(template),
                        "{\"eos_token\": \"<|end_of_text|>\", \"add_eos_token\": true}", new int[]{BOT, 't', 257, EOT}),
                new Case("template with EOS", m.writeValueAsString(both), "{}", new int[]{BOT, 't', 257, EOT}),
                new Case("template with EOS, add_eos_token false", m.writeValueAsString(both),
                        "{\"eos_token\": \"<|end_of_text|>\", \"add_eos_token\": false}", new int[]{BOT, 't', 257}),
                new Case("no template", m.writeValueAsString(noTemplate),
                        "{\"bos_token\": null, \"eos_token\": \"<|end_of_text|>\"}", the),
                new Case("no template, add_bos_token true", m.writeValueAsString(noTemplate),
                        "{\"bos_token\": \"<|begin_of_text|>\", \"add_bos_token\": true}", new int[]{BOT, 't', 257}))) {
            Path d = Files.createDirectories(dir.resolve(c.name().replaceAll("[^a-z_]", "-")));
            Files.writeString(d.resolve("tokenizer.json"), c.postProcessor());
            Files.writeString(d.resolve("tokenizer_config.json"), c.config());
            Files.writeString(d.resolve("generation_config.json"), "{\"bos_token_id\": 261, \"eos_token_id\": 262}");
            try (var t = HfTokenizer.load(d)) {
                assertArrayEquals(c.want(), t.encode("the", true), c.name());
                assertArrayEquals(the, t.encode("the", false), c.name());
                assertEquals(BOT, t.bosId(), c.name());
            }
        }
    }
}
