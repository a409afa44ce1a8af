package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

import static dev.bdserve.tokenizer.GgufTokenizerMetadata.strings;

/**
 * A GGUF byte-level BPE vocabulary ({@code tokenizer.ggml.model} {@code gpt2}) as the equivalent Hugging Face
 * tokenizer.json (vocabulary, merges, the pre-tokenizer {@code tokenizer.ggml.pre} names, added tokens), which the
 * Hugging Face tokenizers library then runs ({@link HfTokenizer}): the reverse of {@link GgufBpeVocab}.
 */
final class GgufBpeTokenizerJson {
    private GgufBpeTokenizerJson() {}

    /** The tokenizer of a {@code gpt2} vocabulary's metadata, through a tokenizer.json in a temporary folder. */
    static Tokenizer load(String source, Map<String, Object> md) {
        ObjectNode root = tokenizerJson(source, md);
        Path dir = null;
        try {
            dir = Files.createTempDirectory("bdserve-gguf-tokenizer");
            new ObjectMapper().writeValue(dir.resolve("tokenizer.json").toFile(), root);
            return HfTokenizer.load(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot build the tokenizer of " + source + ": " + e.getMessage(), e);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(source + ": its gpt2 tokenizer was refused: " + e.getMessage(), e);
        } finally {
            if (dir != null) deleteQuietly(dir);
        }
    }

    /**
     * The tokenizer.json: CONTROL, USER_DEFINED and UNKNOWN tokens as added tokens (special but for USER_DEFINED), the
     * pre-tokenizer's regexes as isolating Splits before a ByteLevel step, a byte-level BPE model with llama.cpp's
     * {@code ignore_merges} for that pre-tokenizer.
     */
    static ObjectNode tokenizerJson(String source, Map<String, Object> md) {
        String pre = GgufPreTokenizers.name(md);
        List<String> regexes = GgufPreTokenizers.regexes(source, pre);
        List<String> tokens = strings(source, md, "tokenizer.ggml.tokens");
        List<String> merges = strings(source, md, "tokenizer.ggml.merges");
        List<?> types = md.get("tokenizer.ggml.token_type") instanceof List<?> l ? l : List.of();
        if (!types.isEmpty() && types.size() != tokens.size())
            throw new ModelFormatException(source + ": tokenizer.ggml.token_type has " + types.size() + " entries for " + tokens.size() + " tokens");
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode root = f.objectNode();
        root.put("version", "1.0");
        ArrayNode added = root.putArray("added_tokens");
        ObjectNode vocab = f.objectNode();
        for (int i = 0; i < tokens.size(); i++) {
            long type = types.isEmpty() ? GgufTokenizers.NORMAL : ((Number) types.get(i)).longValue();
            if (type == GgufTokenizers.CONTROL || type == GgufTokenizers.USER_DEFINED || type == GgufTokenizers.UNKNOWN)
                added.addObject().put("id", i).put("content", tokens.get(i)).put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", type == GgufTokenizers.USER_DEFINED).put("special", type != GgufTokenizers.USER_DEFINED);
            vocab.put(tokens.get(i), i);
        }
        root.putNull("normalizer");
        ArrayNode steps = root.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        for (String regex : regexes) {
            ObjectNode split = steps.addObject().put("type", "Split");
            split.putObject("pattern").put("Regex", regex);
            split.put("behavior", "Isolated").put("invert", false);
        }
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", false);
        root.putNull("post_processor");
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", true);
        ObjectNode bpe = root.putObject("model").put("type", "BPE");
        bpe.putNull("dropout");
        bpe.putNull("unk_token");
        bpe.putNull("continuing_subword_prefix");
        bpe.putNull("end_of_word_suffix");
        bpe.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", GgufPreTokenizers.IGNORE_MERGES.contains(pre));
        bpe.set("vocab", vocab);
        ArrayNode m = bpe.putArray("merges");
        for (String merge : merges) m.add(merge);
        return root;
    }

    private static void deleteQuietly(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temporary folder left behind
        }
    }
}
