package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
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
                new Case("tokenizer.ggml.bos_token_id", 2L, "is not supported (only 0, 1, 2"),
                new Case("tokenizer.ggml.add_space_prefix", false, "add_space_prefix false is not supported"))) {
            Map<String, Object> md = new HashMap<>(spm);
            if (c.value() == null) md.remove(c.key());
            else md.put(c.key(), c.value());
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("x.gguf", md), c.toString());
            assertTrue(e.getMessage().startsWith("x.gguf: ") && e.getMessage().contains(c.message()), e.getMessage());
        }
        Map<String, Object> bpe = new HashMap<>();
        bpe.put("tokenizer.ggml.model", "gpt2");
        bpe.put("tokenizer.ggml.pre", "deepseek-coder");
        bpe.put("tokenizer.ggml.tokens", List.of("a"));
        bpe.put("tokenizer.ggml.merges", List.of());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufTokenizers.fromMetadata("y.gguf", bpe));
        assertEquals("y.gguf: tokenizer.ggml.pre 'deepseek-coder' is not supported (supported: default, gpt-2, llama-bpe, qwen2)", e.getMessage());
    }
}
