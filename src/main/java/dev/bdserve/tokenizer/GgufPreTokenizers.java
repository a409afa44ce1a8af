package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The pre-tokenizers of llama.cpp's byte-level BPE ({@code gpt2}) vocabularies that bdserve supports, by their
 * {@code tokenizer.ggml.pre} name: what reading such a vocabulary ({@link GgufTokenizers}) and writing one from a
 * tokenizer.json ({@link GgufBpeVocab}) must agree on.
 */
final class GgufPreTokenizers {
    private GgufPreTokenizers() {}

    /**
     * The pre-tokenizer of each supported {@code tokenizer.ggml.pre}: regexes applied one after another, each splitting
     * the pieces left by the one before (llama.cpp's {@code llm_tokenizer_bpe} expressions).
     */
    static final Map<String, List<String>> REGEXES = Map.of(
            "default", List.of("[\\p{P}\\$\\+<=>\\^~\\|]+", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
                    "\\p{N}+", "[0-9][0-9][0-9]"),
            "gpt-2", List.of("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"),
            "llama-bpe", List.of("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            "qwen2", List.of("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
    /** Llama 3's tokenizer takes a pre-token that is itself a vocabulary entry whole, before any merge. */
    static final Set<String> IGNORE_MERGES = Set.of("llama-bpe");

    /** Pre-tokenizers after which llama.cpp adds BOS by default (its LLAMA3 pre-tokenizer type). */
    static final Set<String> LLAMA3 = Set.of("llama-bpe");

    /** Other names llama.cpp gives the same pre-tokenizer (its LLAMA3 type: Llama 3's expression). */
    private static final Map<String, String> ALIASES = Map.of("llama3", "llama-bpe", "llama-v3", "llama-bpe");

    /** The file's pre-tokenizer under the name {@link #REGEXES} uses ({@code default} when the metadata names none). */
    static String name(Map<String, Object> md) {
        String p = md.get("tokenizer.ggml.pre") instanceof String s ? s : "default";
        return ALIASES.getOrDefault(p, p);
    }

    /** The regexes of pre-tokenizer {@code pre} (as {@link #name} gives it); an unsupported one is refused naming {@code source}. */
    static List<String> regexes(String source, String pre) {
        List<String> regexes = REGEXES.get(pre);
        if (regexes == null)
            throw new ModelFormatException(source + ": tokenizer.ggml.pre '" + pre + "' is not supported (supported: " + String.join(", ",
                    REGEXES.keySet().stream().sorted().toList()) + ", and " + String.join(", ", ALIASES.keySet().stream().sorted().toList())
                    + " as llama-bpe)");
        return regexes;
    }
}
