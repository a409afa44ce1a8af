package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.gguf.GgufTestFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/**
 * SentencePiece-style tokenizer.json folders (llama2.c's tok512 vocabulary as {@link HfTokenizerJsonWriter} writes it,
 * then edited) written as GGUF {@code llama} vocabularies by {@link GgufSpmVocab}: Gemma's space handling (a lone
 * Replace normalizer, no dummy prefix, no Strip decoder) becomes add_space_prefix false and encodes as the folder and
 * as llama.cpp; what the GGUF file could not reproduce is refused by name.
 */
class GgufSpmVocabTest {
    @TempDir Path dir;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** tok512's folder with its tokenizer.json changed by {@code edit} and, when not null, tokenizer_config.json replaced. */
    private Path folder(String name, Consumer<ObjectNode> edit, String config) throws Exception {
        Path d = dir.resolve(name);
        HfTokenizerJsonWriter.write(Llama2cTokenizer.load(TestModels.tok512()), d);
        ObjectNode json = (ObjectNode) JSON.readTree(d.resolve("tokenizer.json").toFile());
        edit.accept(json);
        JSON.writeValue(d.resolve("tokenizer.json").toFile(), json);
        if (config != null) Files.writeString(d.resolve("tokenizer_config.json"), config);
        return d;
    }

    /** Gemma's: spaces replaced by ▁ and nothing prepended, a pre-tokenizer splitting on spaces, a decoder without Strip. */
    private static void gemmaSpaces(ObjectNode json) {
        ObjectNode n = json.putObject("normalizer").put("type", "Replace");
        n.putObject("pattern").put("String", " ");
        n.put("content", HfTokenizerJsonWriter.SPACE);
        ObjectNode p = json.putObject("pre_tokenizer").put("type", "Split");
        p.putObject("pattern").put("String", " ");
        p.put("behavior", "MergedWithPrevious").put("invert", false);
        var decoders = (com.fasterxml.jackson.databind.node.ArrayNode) json.get("decoder").get("decoders");
        decoders.remove(decoders.size() - 1);                                      // the Strip
    }

    @Test
    void gemmasSpaceHandlingIsAddSpacePrefixFalse() throws Exception {
        Path d = folder("gemma-like", GgufSpmVocabTest::gemmaSpaces, "{\"add_bos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\","
                + " \"unk_token\": \"<unk>\", \"pad_token\": \"<unk>\"}");
        Map<String, Object> md = GgufBpeVocabTest.written(d, 512);
        assertEquals(List.of("llama", false, true, 0L, 1L, 2L, 0L), List.of(md.get("tokenizer.ggml.model"), md.get("tokenizer.ggml.add_space_prefix"),
                md.get("tokenizer.ggml.add_bos_token"), ((Number) md.get("tokenizer.ggml.unknown_token_id")).longValue(),
                ((Number) md.get("tokenizer.ggml.bos_token_id")).longValue(), ((Number) md.get("tokenizer.ggml.eos_token_id")).longValue(),
                ((Number) md.get("tokenizer.ggml.padding_token_id")).longValue()));

        Path written = dir.resolve("gemma-like.gguf");
        List<String> texts = new ArrayList<>(GgufBpeVocabTest.FIXED);
        texts.addAll(List.of("Once upon a time", " Once", "  two", "a\u2581b", "<s>x</s> y"));
        try (HfTokenizer hf = HfTokenizer.load(d)) {
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab("llama-spm"), written, w -> GgufTokenizers.writeMetadata(hf, w, 512));
            Tokenizer gguf = Tokenizers.load(written);
            LlamaCppVocab.Result llama = LlamaCppVocab.tokenize(written, 512, texts);
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < texts.size(); i++) {
                String text = texts.get(i);
                int[] want = hf.encode(text, true), plain = hf.encode(text, false);
                if (!Arrays.equals(want, gguf.encode(text, true))) failures.add(text + ": DJL " + Arrays.toString(want) + ", bdserve " + Arrays.toString(gguf.encode(text, true)));
                if (!Arrays.equals(plain, llama.tokens().get(i))) failures.add(text + ": DJL " + Arrays.toString(plain) + ", llama.cpp " + Arrays.toString(llama.tokens().get(i)));
                if (!hf.decode(want).equals(gguf.decode(want))) failures.add("decode of " + text + ": DJL '" + hf.decode(want) + "', bdserve '" + gguf.decode(want) + "'");
            }
            assertEquals(List.of(), failures, failures.size() + " disagreements on " + texts.size() + " texts");
            assertEquals(" Once", gguf.decode(gguf.encode(" Once", true)), "no dummy space dropped after BOS");
        }
    }

    @Test
    void whatGgufCannotReproduceIsRefused() throws Exception {
        record Case(String name, Consumer<ObjectNode> edit, String config, String message) {}
        List<Case> cases = List.of(
                new Case("replace-with-strip", j -> {
                    gemmaSpaces(j);
                    ((com.fasterxml.jackson.databind.node.ArrayNode) j.get("decoder").get("decoders")).addObject().put("type", "Strip")
                            .put("content", " ").put("start", 1).put("stop", 0);
                }, null, "strips a leading space but encoding prepends none"),
                new Case("prepend-without-strip", j -> {
                    var decoders = (com.fasterxml.jackson.databind.node.ArrayNode) j.get("decoder").get("decoders");
                    decoders.remove(decoders.size() - 1);
                }, null, "does not strip a leading space but encoding prepends one"),
                new Case("replace-with-metaspace", j -> {
                    gemmaSpaces(j);
                    j.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", HfTokenizerJsonWriter.SPACE)
                            .put("prepend_scheme", "never").put("split", false);
                }, null, "cannot be written as a GGUF llama vocabulary (supported: Prepend ▁ then Replace"),
                new Case("split-inverted", j -> {
                    gemmaSpaces(j);
                    ((ObjectNode) j.get("pre_tokenizer")).put("invert", true);
                }, null, "cannot be written as a GGUF llama vocabulary (supported: Prepend ▁ then Replace"),
                new Case("unknown-pad", j -> { }, "{\"pad_token\": \"<pad>\"}", "pad_token '<pad>' is not a token of the vocabulary"));
        for (Case c : cases) {
            Path d = folder(c.name(), c.edit(), c.config());
            var e = assertThrows(ModelFormatException.class, () -> GgufBpeVocabTest.written(d, 512), c.name());
            assertTrue(e.getMessage().contains(c.message()) && (e.getMessage().startsWith("tokenizer file " + d.resolve("tokenizer.json") + ": ")
                    || e.getMessage().startsWith(d.resolve("tokenizer_config.json").toAbsolutePath() + ": ")), c.name() + ": " + e.getMessage());
        }
    }
}
