package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufWriter;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Tokenizers from GGUF metadata, and the metadata they refuse. */
class GgufTokenizersTest {
    /** Llama 2's SentencePiece vocabulary as a GGUF file's metadata holds it: ▁ for spaces, scores, token types. */
    static Map<String, Object> spmMetadata(Llama2cTokenizer t) {
        List<Object> tokens = new ArrayList<>(), scores = new ArrayList<>(), types = new ArrayList<>();
        for (int i = 0; i < t.vocabSize(); i++) {
            tokens.add(t.tokenString(i).replace(" ", HfTokenizerJsonWriter.SPACE));
            scores.add((double) t.score(i));
            types.add(i <= 2 ? (i == 0 ? GgufTokenizers.UNKNOWN : GgufTokenizers.CONTROL) : t.isByteToken(i) ? GgufTokenizers.BYTE : GgufTokenizers.NORMAL);
        }
        Map<String, Object> md = new HashMap<>();
        md.put("tokenizer.ggml.model", "llama");
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.scores", scores);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.bos_token_id", 1L);
        md.put("tokenizer.ggml.eos_token_id", 2L);
        md.put("tokenizer.ggml.unknown_token_id", 0L);
        return md;
    }

    /**
     * A small byte-level BPE vocabulary as a gpt2 GGUF file holds it: the 256 byte characters, three merges
     * ("Ġt", "he", "Ġthe" at 256..258) and two CONTROL tokens, {@code <|bos|>} 259 and {@code <|eos|>} 260.
     */
    static Map<String, Object> gpt2Metadata(String pre) {
        char[] enc = ByteLevelAlphabet.encoder();
        List<Object> tokens = new ArrayList<>(), types = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(enc[b]));
            types.add(GgufTokenizers.NORMAL);
        }
        for (String t : List.of("Ġt", "he", "Ġthe")) {
            tokens.add(t);
            types.add(GgufTokenizers.NORMAL);
        }
        for (String t : List.of("<|bos|>", "<|eos|>")) {
            tokens.add(t);
            types.add(GgufTokenizers.CONTROL);
        }
        Map<String, Object> md = new HashMap<>();
        md.put("tokenizer.ggml.model", "gpt2");
        md.put("tokenizer.ggml.pre", pre);
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.merges", List.of("Ġ t", "h e", "Ġt he"));
        md.put("tokenizer.ggml.bos_token_id", 259L);
        md.put("tokenizer.ggml.eos_token_id", 260L);
        return md;
    }

    static final int G_BOS = 259, G_EOS = 260;

    /** encode(text, true) adds BOS and EOS as llama.cpp's defaults and the add_bos / add_eos keys say. */
    @Test
    void specialTokensAddedAsTheFlagsSay() {
        int[] theThe = {'t', 257, 258};                                          // "the the"
        record Case(String pre, Boolean addBos, Boolean addEos, boolean wantBos, boolean wantEos) {}
        for (Case c : List.of(
                new Case("default", null, null, false, false),
                new Case("gpt-2", null, null, false, false),
                new Case("qwen2", null, null, false, false),
                new Case("llama-bpe", null, null, true, false),
                new Case("llama-bpe", false, null, false, false),
                new Case("qwen2", true, null, true, false),
                new Case("qwen2", null, true, false, true),
                new Case("llama-bpe", false, true, false, true),
                new Case("gpt-2", true, true, true, true))) {
            Map<String, Object> md = gpt2Metadata(c.pre());
            if (c.addBos() != null) md.put("tokenizer.ggml.add_bos_token", c.addBos());
            if (c.addEos() != null) md.put("tokenizer.ggml.add_eos_token", c.addEos());
            Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", md);
            List<Integer> want = new ArrayList<>();
            if (c.wantBos()) want.add(G_BOS);
            for (int id : theThe) want.add(id);
            if (c.wantEos()) want.add(G_EOS);
            assertEquals(want, boxed(t.encode("the the", true)), c.toString());
            assertEquals(boxed(theThe), boxed(t.encode("the the", false)), c.toString());
            assertEquals(G_BOS, t.bosId());
            assertArrayEquals(new int[]{G_EOS}, t.eosIds());
        }
        Llama2cTokenizer ref = Llama2cTokenizer.load(TestModels.tok512());
        int[] plain = ref.encode("Once upon a time", false);
        for (Boolean addBos : new Boolean[]{null, true, false})
            for (Boolean addEos : new Boolean[]{null, true, false}) {
                Map<String, Object> md = spmMetadata(ref);
                if (addBos != null) md.put("tokenizer.ggml.add_bos_token", addBos);
                if (addEos != null) md.put("tokenizer.ggml.add_eos_token", addEos);
                List<Integer> want = new ArrayList<>();
                if (addBos == null || addBos) want.add(1);                       // SentencePiece: BOS by default
                want.addAll(boxed(plain));
                if (addEos != null && addEos) want.add(2);
                assertEquals(want, boxed(GgufTokenizers.fromMetadata("x.gguf", md).encode("Once upon a time", true)),
                        "add_bos " + addBos + ", add_eos " + addEos);
            }
    }

    /** A text whose tokens already start with BOS gets no second one (llama.cpp would add it and warn). */
    @Test
    void noSecondBos() {
        Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", gpt2Metadata("llama-bpe"));
        assertEquals(List.of(G_BOS, (int) 't', 257), boxed(t.encode("<|bos|>the", true)));
        assertEquals(List.of(G_BOS, G_BOS, (int) 't', 257), boxed(t.encode("<|bos|><|bos|>the", true)));
        assertEquals(List.of(G_BOS, (int) 't', 257, G_EOS), boxed(t.encode("the<|eos|>", true)));
    }

    /** Without special ids a gpt2 vocabulary uses llama.cpp's default, 11, for both; ids outside the vocabulary too. */
    @Test
    void gpt2DefaultSpecialIds() {
        Map<String, Object> md = gpt2Metadata("llama-bpe");
        md.remove("tokenizer.ggml.bos_token_id");
        md.put("tokenizer.ggml.eos_token_id", 5000L);
        Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", md);
        assertEquals(11, t.bosId());
        assertArrayEquals(new int[]{11}, t.eosIds());
        assertEquals(List.of(11, (int) 't', 257), boxed(t.encode("the", true)));
    }

    /** A GGUF file's SentencePiece vocabulary is written back with its flags and UNUSED tokens; a gpt2 one is refused. */
    @Test
    void ggufVocabulariesWrittenBack(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        Map<String, Object> md = spmMetadata(Llama2cTokenizer.load(TestModels.tok512()));
        md.put("tokenizer.ggml.add_eos_token", true);
        List<Object> types = new ArrayList<>((List<?>) md.get("tokenizer.ggml.token_type"));
        types.set(300, GgufTokenizers.UNUSED);
        md.put("tokenizer.ggml.token_type", types);
        Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", md);
        dev.bdserve.model.gguf.GgufWriter w = new dev.bdserve.model.gguf.GgufWriter();
        GgufTokenizers.writeMetadata(t, w);
        w.write(dir.resolve("again.gguf"));
        try (var f = dev.bdserve.model.gguf.GgufFile.open(dir.resolve("again.gguf"))) {
            assertEquals(List.of(true, true), List.of(f.bool("tokenizer.ggml.add_bos_token"), f.bool("tokenizer.ggml.add_eos_token")));
            assertEquals(types, f.list("tokenizer.ggml.token_type"));
            Tokenizer again = GgufTokenizers.fromMetadata("again.gguf", f.metadata());
            assertArrayEquals(t.encode("Once upon a time", true), again.encode("Once upon a time", true));
            assertEquals(t.unusedIds(), again.unusedIds());
        }
        var e = assertThrows(IllegalArgumentException.class, () -> GgufTokenizers.writeMetadata(t, new dev.bdserve.model.gguf.GgufWriter(), 600));
        assertTrue(e.getMessage().contains("has 512 tokens but the model 600"), e.getMessage());
        Tokenizer bpe = GgufTokenizers.fromMetadata("b.gguf", gpt2Metadata("gpt-2"));
        e = assertThrows(IllegalArgumentException.class, () -> GgufTokenizers.writeMetadata(bpe, new dev.bdserve.model.gguf.GgufWriter()));
        assertTrue(e.getMessage().startsWith("only SentencePiece (llama2.c tokenizer.bin, GGUF llama) and Hugging Face byte-level BPE "
                + "(tokenizer.json) vocabularies can be written to GGUF, not GGUF tokenizer of b.gguf"), e.getMessage());
    }

    /** Generation ends at the EOS, end-of-turn and end-of-message ids the metadata names (as in llama.cpp). */
    @Test
    void endOfTurnAndMessageIdsEndGeneration() {
        Map<String, Object> md = gpt2Metadata("gpt-2");
        assertEquals(List.of(G_EOS), boxed(GgufTokenizers.fromMetadata("x.gguf", md).eosIds()));
        md.put("tokenizer.ggml.eot_token_id", 258L);
        md.put("tokenizer.ggml.eom_token_id", 5000L);                             // outside the vocabulary: ignored
        assertEquals(List.of(G_EOS, 258), boxed(GgufTokenizers.fromMetadata("x.gguf", md).eosIds()));
        md.put("tokenizer.ggml.eom_token_id", (long) G_EOS);
        assertEquals(List.of(G_EOS, 258), boxed(GgufTokenizers.fromMetadata("x.gguf", md).eosIds()));
        md.put("tokenizer.ggml.eom_token_id", 7L);
        Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", md);
        assertEquals(List.of(G_EOS, 258, 7), boxed(t.eosIds()));
        md.put("tokenizer.ggml.add_eos_token", true);
        assertEquals(List.of((int) 't', G_EOS), boxed(GgufTokenizers.fromMetadata("x.gguf", md).encode("t", true)), "the EOS is appended");
    }

    static List<Integer> boxed(int[] a) { return java.util.Arrays.stream(a).boxed().toList(); }

    @Test
    void aSentencePieceVocabularyEncodesAndDecodesAsLlama2c() {
        Llama2cTokenizer ref = Llama2cTokenizer.load(TestModels.llama2());
        Tokenizer t = GgufTokenizers.fromMetadata("llama2.gguf", spmMetadata(ref));
        assertEquals(ref.vocabSize(), t.vocabSize());
        assertEquals(1, t.bosId());
        assertArrayEquals(new int[]{2}, t.eosIds());
        String[] words = {"Hello", " world", "🦙", "東京", "naïve", "\n", "\t", "  ", "it's", "1234", "Äpfel"};
        SplittableRandom r = new SplittableRandom(3);
        for (int trial = 0; trial < 300; trial++) {
            StringBuilder sb = new StringBuilder();
            for (int k = r.nextInt(12); k > 0; k--) sb.append(words[r.nextInt(words.length)]);
            String text = sb.toString();
            assertArrayEquals(ref.encode(text, trial % 2 == 0), t.encode(text, trial % 2 == 0), text);
            assertEquals(ref.decode(ref.encode(text, false)), t.decode(t.encode(text, false)), text);
        }
        assertArrayEquals(new int[]{15043, 3186}, t.encode("Hello world", false), "llama.cpp's ids for Llama 2's vocabulary");
    }

    /** UNUSED-type tokens are reported so that the engine never samples them. */
    @Test
    void unusedTokensAreReported() {
        Map<String, Object> md = spmMetadata(Llama2cTokenizer.load(TestModels.tok512()));
        assertTrue(GgufTokenizers.fromMetadata("x.gguf", md).unusedIds().isEmpty());
        List<Object> types = new ArrayList<>((List<?>) md.get("tokenizer.ggml.token_type"));
        types.set(300, GgufTokenizers.UNUSED);
        types.set(511, GgufTokenizers.UNUSED);
        md.put("tokenizer.ggml.token_type", types);
        Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", md);
        java.util.BitSet want = new java.util.BitSet();
        want.set(300);
        want.set(511);
        assertEquals(want, t.unusedIds());
        assertEquals(512, t.vocabSize());
        assertArrayEquals(Llama2cTokenizer.load(TestModels.tok512()).encode("Once upon a time", true), t.encode("Once upon a time", true));
    }

    /**
     * A SentencePiece vocabulary laid out as Gemma's: without a dummy space prefix (add_space_prefix false), and with
     * BOS, EOS and {@code <unk>} at other ids (here 5, 6, 7 as CONTROL, CONTROL, UNKNOWN): the text is encoded as it
     * comes, those ids are added, skipped in decoding and never formed from text, and the metadata written again
     * keeps them; llama2.c's layout is unchanged.
     */
    @Test
    void sentencePieceLayoutFromMetadata(@org.junit.jupiter.api.io.TempDir Path dir) {
        Llama2cTokenizer ref = Llama2cTokenizer.load(TestModels.tok512());
        Map<String, Object> md = spmMetadata(ref);
        md.put("tokenizer.ggml.add_space_prefix", false);
        Tokenizer t = GgufTokenizers.fromMetadata("x.gguf", md);
        String text = "Once upon a time";
        int[] prefixed = ref.encode(text, false), plain = t.encode(text, false);
        assertArrayEquals(prefixed, t.encode(" " + text, false), "llama2.c's layout prepends the space that this text starts with");
        assertFalse(Arrays.equals(prefixed, plain), "no dummy prefix");
        assertEquals(text, t.decode(plain));
        assertEquals(text, t.decode(t.encode(text, true)), "no space is dropped after BOS without a prefix");
        assertFalse(t.decode(new int[]{plain[0]}).startsWith(" "), "the first piece has no space");

        List<Object> types = new ArrayList<>((List<?>) md.get("tokenizer.ggml.token_type"));
        List<Object> tokens = new ArrayList<>((List<?>) md.get("tokenizer.ggml.tokens"));
        for (int i = 0; i < 3; i++) types.set(i, GgufTokenizers.NORMAL);
        for (int i = 0; i < 3; i++) tokens.set(i, "<old" + i + ">");
        tokens.set(5, "<bos>");
        tokens.set(6, "<eos>");
        tokens.set(7, "<unk>");
        types.set(5, GgufTokenizers.CONTROL);
        types.set(6, GgufTokenizers.CONTROL);
        types.set(7, GgufTokenizers.UNKNOWN);
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.bos_token_id", 5L);
        md.put("tokenizer.ggml.eos_token_id", 6L);
        md.put("tokenizer.ggml.unknown_token_id", 7L);
        Tokenizer moved = GgufTokenizers.fromMetadata("x.gguf", md);
        assertEquals(5, moved.bosId());
        assertArrayEquals(new int[]{6}, moved.eosIds());
        int[] ids = moved.encode(text + "<eos>", true);
        assertEquals(5, ids[0]);
        assertEquals(6, ids[ids.length - 1]);
        assertEquals(text, moved.decode(ids), "BOS, EOS skipped in decoding");
        int[] withUnk = new int[plain.length + 1];
        withUnk[0] = 7;
        System.arraycopy(plain, 0, withUnk, 1, plain.length);
        assertEquals(text, moved.decode(withUnk), "<unk> skipped");

        GgufWriter w = new GgufWriter();
        GgufTokenizers.writeMetadata(moved, w);
        Path f = dir.resolve("moved.gguf");
        w.write(f);
        try (GgufFile g = GgufFile.open(f)) {
            Map<String, Object> back = g.metadata();
            assertEquals(List.of(5L, 6L, 7L, false), List.of(((Number) back.get("tokenizer.ggml.bos_token_id")).longValue(),
                    ((Number) back.get("tokenizer.ggml.eos_token_id")).longValue(), ((Number) back.get("tokenizer.ggml.unknown_token_id")).longValue(),
                    back.get("tokenizer.ggml.add_space_prefix")));
            List<?> backTypes = (List<?>) back.get("tokenizer.ggml.token_type");
            assertEquals(List.of(GgufTokenizers.NORMAL, GgufTokenizers.CONTROL, GgufTokenizers.CONTROL, GgufTokenizers.UNKNOWN),
                    List.of(((Number) backTypes.get(0)).longValue(), ((Number) backTypes.get(5)).longValue(), ((Number) backTypes.get(6)).longValue(),
                            ((Number) backTypes.get(7)).longValue()));
        }
        assertArrayEquals(ids, Tokenizers.load(f).encode(text + "<eos>", true));
    }

    @Test
    void unsupportedOrMalformedMetadataIsRefusedByName() {
        Map<String, Object> spm = spmMetadata(Llama2cTokenizer.load(TestModels.tok512()));
        record Case(String key, Object value, String message) {}
        for (Case c : List.of(
                new Case("tokenizer.ggml.model", "bert", "tokenizer.ggml.model 'bert' is not supported"),
                new Case("tokenizer.ggml.model", null, "metadata key tokenizer.ggml.model is missing"),
                new Case("tokenizer.ggml.model", 3L, "tokenizer.ggml.model is Long, expected a string"),
                new Case("tokenizer.ggml.scores", List.of(1.0), "tokenizer.ggml.scores has 1 entries for 512 tokens"),
                new Case("tokenizer.ggml.tokens", "x", "tokenizer.ggml.tokens is String, expected an array"),
                new Case("tokenizer.ggml.token_type", List.of(1L), "tokenizer.ggml.token_type has 1 entries for 512 tokens"))) {
            Map<String, Object> md = new HashMap<>(spm);
            if (c.value() == null) md.remove(c.key());
            else md.put(c.key(), c.value());
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("x.gguf", md), c.toString());
            assertTrue(e.getMessage().startsWith("x.gguf: ") && e.getMessage().contains(c.message()), e.getMessage());
        }
        for (Case c : List.of(
                new Case("tokenizer.ggml.add_bos_token", 1L, "metadata key tokenizer.ggml.add_bos_token is Long, expected a bool"),
                new Case("tokenizer.ggml.add_eos_token", "yes", "metadata key tokenizer.ggml.add_eos_token is String, expected a bool"),
                new Case("tokenizer.ggml.add_space_prefix", 0L, "metadata key tokenizer.ggml.add_space_prefix is Long, expected a bool"))) {
            Map<String, Object> md = new HashMap<>(spm);
            md.put(c.key(), c.value());
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("x.gguf", md), c.toString());
            assertEquals("x.gguf: " + c.message(), e.getMessage());
        }
        // BOS asked for, but none: the vocabulary is smaller than llama.cpp's default id 11
        Map<String, Object> tiny = new HashMap<>();
        tiny.put("tokenizer.ggml.model", "gpt2");
        tiny.put("tokenizer.ggml.pre", "gpt-2");
        tiny.put("tokenizer.ggml.tokens", List.of("a", "b", "c"));
        tiny.put("tokenizer.ggml.merges", List.of());
        assertEquals(-1, GgufTokenizers.fromMetadata("t.gguf", tiny).bosId());
        tiny.put("tokenizer.ggml.add_bos_token", true);
        ModelFormatException noBos = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("t.gguf", tiny));
        assertEquals("t.gguf: tokenizer.ggml.add_bos_token is true but there is no BOS token in the vocabulary of 3", noBos.getMessage());
        tiny.put("tokenizer.ggml.add_bos_token", false);
        tiny.put("tokenizer.ggml.add_eos_token", true);
        ModelFormatException noEos = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("t.gguf", tiny));
        assertEquals("t.gguf: tokenizer.ggml.add_eos_token is true but there is no EOS token in the vocabulary of 3", noEos.getMessage());

        Map<String, Object> bpe = new HashMap<>();
        bpe.put("tokenizer.ggml.model", "gpt2");
        bpe.put("tokenizer.ggml.pre", "deepseek-coder");
        bpe.put("tokenizer.ggml.tokens", List.of("a"));
        bpe.put("tokenizer.ggml.merges", List.of());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("y.gguf", bpe));
        assertEquals("y.gguf: tokenizer.ggml.pre 'deepseek-coder' is not supported (supported: default, gpt-2, llama-bpe, qwen2, "
                + "and llama-v3, llama3 as llama-bpe)", e.getMessage());
    }
}
