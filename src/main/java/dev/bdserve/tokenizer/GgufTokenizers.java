package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.gguf.GgufValueType;
import dev.bdserve.model.gguf.GgufWriter;

import java.nio.charset.StandardCharsets;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.bdserve.tokenizer.GgufTokenizerMetadata.flag;
import static dev.bdserve.tokenizer.GgufTokenizerMetadata.list;
import static dev.bdserve.tokenizer.GgufTokenizerMetadata.ofType;
import static dev.bdserve.tokenizer.GgufTokenizerMetadata.specialId;
import static dev.bdserve.tokenizer.GgufTokenizerMetadata.string;
import static dev.bdserve.tokenizer.GgufTokenizerMetadata.strings;

/**
 * The tokenizer a GGUF file describes in its {@code tokenizer.ggml.*} metadata, as llama.cpp reads it.
 * {@code tokenizer.ggml.model} {@code llama}: SentencePiece BPE with scores, run by {@link Llama2cTokenizer} (the same
 * merge-by-score algorithm with byte fallback; the special ids and whether a space is prepended,
 * {@code tokenizer.ggml.add_space_prefix}, from the metadata). {@code gpt2}: byte-level BPE with merges and
 * the pre-tokenizer {@code tokenizer.ggml.pre} names ({@code default}, {@code gpt-2}, {@code llama-bpe}, {@code qwen2}), run by the
 * Hugging Face tokenizers library from an equivalent tokenizer.json ({@link GgufBpeTokenizerJson}). Anything else is
 * refused by name. Writing a vocabulary's metadata ({@link #writeMetadata}) is the reverse.
 *
 * <p>Metadata values follow the GGUF reader's types: integers as {@link Long}, floats as {@link Double}, arrays as
 * {@link List} ({@link GgufTokenizerMetadata} reads them).
 */
public final class GgufTokenizers {
    /** llama.cpp's token types ({@code llama_token_type}). */
    static final long NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    private GgufTokenizers() {}

    /**
     * The tokenizer of a GGUF file's metadata; {@code source} names the file in messages. Its {@code encode(text, true)}
     * adds BOS and EOS as llama.cpp's tokenizer does with {@code add_special}: BOS when {@code tokenizer.ggml.add_bos_token}
     * (default: true for SentencePiece, and for byte-level BPE only with the {@code llama-bpe} pre-tokenizer), EOS when
     * {@code tokenizer.ggml.add_eos_token} (default false). Unlike llama.cpp it adds no second BOS to a text whose
     * tokens already start with one, as {@link HfTokenizer} does.
     *
     * <p>Generation ends ({@link Tokenizer#eosIds}) at the EOS and the end-of-turn and end-of-message tokens the
     * metadata names. A SentencePiece vocabulary naming no end-of-turn token also ends at the CONTROL tokens spelled as
     * llama.cpp's end-of-turn names ({@link #END_OF_TURN}), which llama.cpp finds by their text: its converter names
     * none for Gemma 2 and 3 ({@code <end_of_turn>}, the EOS being {@code <eos>}) or Phi-3 ({@code <|end|>}).
     */
    public static Tokenizer fromMetadata(String source, Map<String, Object> md) {
        String model = string(source, md, "tokenizer.ggml.model");
        Tokenizer t = switch (model) {
            case "llama" -> sentencePiece(source, md);
            case "gpt2" -> GgufBpeTokenizerJson.load(source, md);
            default -> throw new ModelFormatException(source + ": tokenizer.ggml.model '" + model
                    + "' is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE))");
        };
        int n = t.vocabSize();
        boolean spm = model.equals("llama");
        int bos = specialId(md, "tokenizer.ggml.bos_token_id", spm ? Llama2cTokenizer.BOS : GPT2_DEFAULT_ID, n);
        int eos = specialId(md, "tokenizer.ggml.eos_token_id", spm ? Llama2cTokenizer.EOS : GPT2_DEFAULT_ID, n);
        boolean addBos = flag(source, md, "tokenizer.ggml.add_bos_token", spm || GgufPreTokenizers.LLAMA3.contains(GgufPreTokenizers.name(md)));
        boolean addEos = flag(source, md, "tokenizer.ggml.add_eos_token", false);
        if (addBos && bos < 0)
            throw new ModelFormatException(source + ": tokenizer.ggml.add_bos_token is true but there is no BOS token in the vocabulary of " + n);
        if (addEos && eos < 0)
            throw new ModelFormatException(source + ": tokenizer.ggml.add_eos_token is true but there is no EOS token in the vocabulary of " + n);
        BitSet unused = ofType(md, UNUSED);
        Map<Integer, String> userDefined = new HashMap<>();
        if (md.get("tokenizer.ggml.tokens") instanceof List<?> tokens)
            ofType(md, USER_DEFINED).stream().filter(i -> i < tokens.size()).forEach(i -> {
                if (tokens.get(i) instanceof String spelled) userDefined.put(i, spelled);
            });
        // generation ends at the EOS and at the end-of-turn / end-of-message tokens the metadata names, as in llama.cpp
        int eot = specialId(md, "tokenizer.ggml.eot_token_id", -1, n);
        java.util.stream.IntStream byName = eot < 0 && spm ? endOfTurnByName(md).stream() : java.util.stream.IntStream.empty();
        int[] stops = java.util.stream.IntStream.concat(java.util.stream.IntStream.of(eos, eot, specialId(md, "tokenizer.ggml.eom_token_id", -1, n)),
                byName).filter(i -> i >= 0).distinct().toArray();
        return new GgufTokenizer(source, t, bos, eos, stops, addBos, addEos, unused, userDefined, spm ? specials(md) : null);
    }

    /** The texts by which llama.cpp finds an end-of-turn token that the metadata does not name (its special_eot_id). */
    static final Set<String> END_OF_TURN = Set.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
            "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>");

    /** The CONTROL tokens spelled as one of {@link #END_OF_TURN}, in id order. */
    private static BitSet endOfTurnByName(Map<String, Object> md) {
        BitSet ids = new BitSet();
        if (md.get("tokenizer.ggml.tokens") instanceof List<?> tokens)
            ofType(md, CONTROL).stream().filter(i -> i < tokens.size() && END_OF_TURN.contains(tokens.get(i))).forEach(ids::set);
        return ids;
    }

    /**
     * The tokens a SentencePiece text may spell (CONTROL, USER_DEFINED and UNKNOWN), which llama.cpp cuts out of a text
     * before encoding it (a byte-level BPE vocabulary's tokenizer.json lists them as added tokens instead). A model
     * whose {@code general.name} says Phi-3 gets llama.cpp's rule for it: those tokens and {@code </s>}, but not
     * {@code <unk>}, {@code <s>}, {@code <|endoftext|>}, remove the whitespace after them (Phi-3's tokenizer.json
     * marks them {@code rstrip}, which a GGUF file cannot say).
     */
    private static SpecialTokens specials(Map<String, Object> md) {
        Map<String, Integer> spellings = new HashMap<>();
        BitSet control = new BitSet();
        if (md.get("tokenizer.ggml.token_type") instanceof List<?> types && md.get("tokenizer.ggml.tokens") instanceof List<?> tokens)
            for (int i = 0; i < Math.min(types.size(), tokens.size()); i++) {
                long type = types.get(i) instanceof Number num ? num.longValue() : NORMAL;
                if ((type == CONTROL || type == USER_DEFINED || type == UNKNOWN) && tokens.get(i) instanceof String spelling) spellings.putIfAbsent(spelling, i);
                if (type == CONTROL) control.set(i);
            }
        BitSet rstrip = new BitSet();
        String name = md.get("general.name") instanceof String s ? s.toLowerCase(java.util.Locale.ROOT) : "";
        if (name.contains("phi-3") || name.contains("phi3")) {
            spellings.values().forEach(rstrip::set);
            if (md.get("tokenizer.ggml.tokens") instanceof List<?> tokens) {
                int eos = tokens.indexOf("</s>");
                if (eos >= 0) rstrip.set(eos);
                for (String keep : List.of("<unk>", "<s>", "<|endoftext|>")) {
                    int id = tokens.indexOf(keep);
                    if (id >= 0) rstrip.clear(id);
                }
            }
        }
        return new SpecialTokens(spellings, control, rstrip);
    }

    /** llama.cpp's BOS and EOS of a gpt2 vocabulary whose metadata names none (or one outside the vocabulary). */
    private static final int GPT2_DEFAULT_ID = 11;

    /**
     * SentencePiece BPE with scores: pieces spell spaces as ▁, which llama2.c's vocabulary stores as ' '. The special ids
     * default as llama.cpp's: {@code <unk>} 0, BOS 1, EOS 2; CONTROL and UNKNOWN tokens (without token types: those
     * three) are the control tokens; {@code tokenizer.ggml.add_space_prefix} defaults to true.
     */
    private static Tokenizer sentencePiece(String source, Map<String, Object> md) {
        List<String> tokens = strings(source, md, "tokenizer.ggml.tokens");
        List<?> scores = list(source, md, "tokenizer.ggml.scores");
        if (scores.size() != tokens.size())
            throw new ModelFormatException(source + ": tokenizer.ggml.scores has " + scores.size() + " entries for " + tokens.size() + " tokens");
        int n = tokens.size();
        int unk = specialId(md, "tokenizer.ggml.unknown_token_id", Llama2cTokenizer.UNK, n), bos = specialId(md, "tokenizer.ggml.bos_token_id",
                Llama2cTokenizer.BOS, n), eos = specialId(md, "tokenizer.ggml.eos_token_id", Llama2cTokenizer.EOS, n);
        BitSet control;
        if (md.get("tokenizer.ggml.token_type") instanceof List<?> types) {
            if (types.size() != n)
                throw new ModelFormatException(source + ": tokenizer.ggml.token_type has " + types.size() + " entries for " + n + " tokens");
            control = ofType(md, CONTROL);
            control.or(ofType(md, UNKNOWN));
        } else {
            control = new BitSet();
            for (int id : new int[]{unk, bos, eos}) if (id >= 0) control.set(id);
        }
        boolean spacePrefix = flag(source, md, "tokenizer.ggml.add_space_prefix", true);
        float[] s = new float[tokens.size()];
        byte[][] pieces = new byte[tokens.size()][];
        BitSet literal = new BitSet();
        for (int i = 0; i < s.length; i++) {
            if (!(scores.get(i) instanceof Number num))
                throw new ModelFormatException(source + ": tokenizer.ggml.scores[" + i + "] is " + scores.get(i) + ", expected a number");
            s[i] = num.floatValue();
            if (tokens.get(i).indexOf(' ') >= 0) literal.set(i);  // llama.cpp merges text with ▁ for spaces: never this token
            pieces[i] = tokens.get(i).replace(HfTokenizerJsonWriter.SPACE, " ").getBytes(StandardCharsets.UTF_8);
        }
        return Llama2cTokenizer.of(source, s, pieces, new Llama2cTokenizer.Layout(unk, bos, eos, control, literal, spacePrefix));
    }

    /** {@link #writeMetadata(Tokenizer, GgufWriter, int)} for a model whose vocabulary is the tokenizer's. */
    public static void writeMetadata(Tokenizer t, GgufWriter w) { writeMetadata(t, w, t.vocabSize()); }

    /**
     * Writes a tokenizer's {@code tokenizer.ggml.*} metadata for a model of {@code vocabSize} tokens, as llama.cpp's
     * converter does: a llama2.c (or a GGUF file's) SentencePiece vocabulary as {@code llama}, a Hugging Face
     * SentencePiece-style tokenizer.json (Llama 2, Mistral) as {@code llama} with scores from its merges
     * ({@link GgufSpmVocab}), a byte-level BPE tokenizer.json as {@code gpt2} ({@link GgufBpeVocab}); the two
     * tokenizer.json kinds padded with UNUSED tokens up to {@code vocabSize}. Other tokenizers are refused.
     */
    public static void writeMetadata(Tokenizer t, GgufWriter w, int vocabSize) {
        switch (t) {
            case Llama2cTokenizer l -> sentencePiece(l, w, vocabSize, true, false, new BitSet(), Map.of());
            case GgufTokenizer g when g.t() instanceof Llama2cTokenizer l -> sentencePiece(l, w, vocabSize, g.addBos(), g.addEos(), g.unused(), g.userDefined());
            case HfTokenizer h when h.spelling() == HfTokenizer.Spelling.SENTENCEPIECE -> GgufSpmVocab.write(h, w, vocabSize);
            case HfTokenizer h -> GgufBpeVocab.write(h, w, vocabSize);
            default -> throw new IllegalArgumentException("only SentencePiece (llama2.c tokenizer.bin, GGUF llama) and Hugging Face byte-level BPE "
                    + "(tokenizer.json) vocabularies can be written to GGUF, not " + t);
        }
    }

    private static void sentencePiece(Llama2cTokenizer l, GgufWriter w, int vocabSize, boolean addBos, boolean addEos, BitSet unused,
                                      Map<Integer, String> userDefined) {
        if (vocabSize != l.vocabSize())
            throw new IllegalArgumentException("the SentencePiece vocabulary of " + l.source() + " has " + l.vocabSize()
                    + " tokens but the model " + vocabSize + "; it is written only for a model of the same size");
        List<String> tokens = new java.util.ArrayList<>(l.vocabSize());
        List<Double> scores = new java.util.ArrayList<>(l.vocabSize());
        List<Long> types = new java.util.ArrayList<>(l.vocabSize());
        Llama2cTokenizer.Layout layout = l.layout();
        for (int i = 0; i < l.vocabSize(); i++) {
            String spelled = userDefined.get(i);
            tokens.add(spelled != null ? spelled : l.tokenString(i).replace(" ", HfTokenizerJsonWriter.SPACE));
            scores.add((double) l.score(i));
            types.add(i == layout.unk() ? UNKNOWN : l.isControl(i) ? CONTROL : unused.get(i) ? UNUSED : spelled != null ? USER_DEFINED
                    : l.isByteToken(i) ? BYTE : NORMAL);
        }
        w.putString("tokenizer.ggml.model", "llama");
        w.putString("tokenizer.ggml.pre", "default");
        w.putArray("tokenizer.ggml.tokens", GgufValueType.STRING, tokens);
        w.putArray("tokenizer.ggml.scores", GgufValueType.FLOAT32, scores);
        w.putArray("tokenizer.ggml.token_type", GgufValueType.INT32, types);
        if (layout.bos() >= 0) w.putU32("tokenizer.ggml.bos_token_id", layout.bos());
        if (layout.eos() >= 0) w.putU32("tokenizer.ggml.eos_token_id", layout.eos());
        if (layout.unk() >= 0) w.putU32("tokenizer.ggml.unknown_token_id", layout.unk());
        w.putBool("tokenizer.ggml.add_bos_token", addBos);
        w.putBool("tokenizer.ggml.add_eos_token", addEos);
        if (!layout.addSpacePrefix()) w.putBool("tokenizer.ggml.add_space_prefix", false);
    }
}
