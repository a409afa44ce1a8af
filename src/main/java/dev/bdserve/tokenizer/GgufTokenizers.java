package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.gguf.GgufValueType;
import dev.bdserve.model.gguf.GgufWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tokenizer a GGUF file describes in its {@code tokenizer.ggml.*} metadata, as llama.cpp reads it.
 * {@code tokenizer.ggml.model} {@code llama}: SentencePiece BPE with scores, run by {@link Llama2cTokenizer} (the same
 * merge-by-score algorithm with byte fallback; the special ids and whether a space is prepended,
 * {@code tokenizer.ggml.add_space_prefix}, from the metadata). {@code gpt2}: byte-level BPE with merges and
 * the pre-tokenizer {@code tokenizer.ggml.pre} names ({@code default}, {@code gpt-2}, {@code llama-bpe}, {@code qwen2}), run by the
 * Hugging Face tokenizers library from an equivalent tokenizer.json. Anything else is refused by name.
 *
 * <p>Metadata values follow the GGUF reader's types: integers as {@link Long}, floats as {@link Double}, arrays as
 * {@link List}.
 */
public final class GgufTokenizers {
    /** llama.cpp's token types ({@code llama_token_type}). */
    static final long NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    /**
     * The pre-tokenizer of each supported {@code tokenizer.ggml.pre}: regexes applied one after another, each splitting
     * the pieces left by the one before (llama.cpp's {@code llm_tokenizer_bpe} expressions).
     */
    static final Map<String, List<String>> PRE = Map.of(
            "default", List.of("[\\p{P}\\$\\+<=>\\^~\\|]+", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
                    "\\p{N}+", "[0-9][0-9][0-9]"),
            "gpt-2", List.of("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"),
            "llama-bpe", List.of("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            "qwen2", List.of("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
    /** Llama 3's tokenizer takes a pre-token that is itself a vocabulary entry whole, before any merge. */
    static final Set<String> IGNORE_MERGES = Set.of("llama-bpe");

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
            case "gpt2" -> byteLevelBpe(source, md);
            default -> throw new ModelFormatException(source + ": tokenizer.ggml.model '" + model
                    + "' is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE))");
        };
        int n = t.vocabSize();
        boolean spm = model.equals("llama");
        int bos = specialId(md, "tokenizer.ggml.bos_token_id", spm ? Llama2cTokenizer.BOS : GPT2_DEFAULT_ID, n);
        int eos = specialId(md, "tokenizer.ggml.eos_token_id", spm ? Llama2cTokenizer.EOS : GPT2_DEFAULT_ID, n);
        boolean addBos = flag(source, md, "tokenizer.ggml.add_bos_token", spm || LLAMA3_PRE.contains(pre(md)));
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
        return new Gguf(source, t, bos, eos, stops, addBos, addEos, unused, userDefined, spm ? specials(md) : null);
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

    /** The ids whose {@code tokenizer.ggml.token_type} is {@code type}. */
    private static BitSet ofType(Map<String, Object> md, long type) {
        BitSet ids = new BitSet();
        if (md.get("tokenizer.ggml.token_type") instanceof List<?> types)
            for (int i = 0; i < types.size(); i++) if (types.get(i) instanceof Number num && num.longValue() == type) ids.set(i);
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

    /** Pre-tokenizers after which llama.cpp adds BOS by default (its LLAMA3 pre-tokenizer type). */
    private static final Set<String> LLAMA3_PRE = Set.of("llama-bpe");

    /** Other names llama.cpp gives the same pre-tokenizer (its LLAMA3 type: Llama 3's expression). */
    private static final Map<String, String> PRE_ALIASES = Map.of("llama3", "llama-bpe", "llama-v3", "llama-bpe");

    /** The file's pre-tokenizer under the name {@link #PRE} uses. */
    private static String pre(Map<String, Object> md) {
        String p = md.get("tokenizer.ggml.pre") instanceof String s ? s : "default";
        return PRE_ALIASES.getOrDefault(p, p);
    }

    /**
     * A GGUF vocabulary's tokenizer: {@code t} encodes the text, the metadata decides the special ids (BOS, EOS, the
     * ids that end generation), which of them {@code encode(text, true)} adds, and the UNUSED (padding) tokens, which
     * the engine masks; the USER_DEFINED ones are kept as spelled (llama.cpp's converter writes the ▁ of Gemma's as
     * spaces) for writing the vocabulary again.
     */
    private record Gguf(String source, Tokenizer t, int bos, int eos, int[] stops, boolean addBos, boolean addEos, BitSet unused,
                        Map<Integer, String> userDefined, SpecialTokens specials) implements Tokenizer {
        @Override public int vocabSize() { return t.vocabSize(); }
        @Override public int bosId() { return bos; }
        @Override public int[] eosIds() { return stops.clone(); }

        @Override
        public int[] encode(String text, boolean addSpecial) {
            int[] ids = specials == null ? t.encode(text, false) : encodeParts(text);
            boolean pre = addSpecial && addBos && (ids.length == 0 || ids[0] != bos), post = addSpecial && addEos;
            if (!pre && !post) return ids;
            int[] out = new int[ids.length + (pre ? 1 : 0) + (post ? 1 : 0)];
            if (pre) out[0] = bos;
            System.arraycopy(ids, 0, out, pre ? 1 : 0, ids.length);
            if (post) out[out.length - 1] = eos;
            return out;
        }

        /**
         * SentencePiece: special tokens by their spelling, then each plain fragment encoded alone (with its own dummy
         * space prefix if any, as llama.cpp's SPM session), a ▁ in it read as the space it stands for in the pieces (as
         * llama.cpp, which escapes spaces as ▁, and Hugging Face's normalizer, which replaces them by ▁, both do).
         */
        private int[] encodeParts(String text) {
            java.util.stream.IntStream.Builder out = java.util.stream.IntStream.builder();
            for (SpecialTokens.Part p : specials.split(text)) {
                switch (p) {
                    case SpecialTokens.Token(int id) -> out.add(id);
                    case SpecialTokens.Text(String fragment) -> {
                        for (int id : t.encode(fragment.replace(HfTokenizerJsonWriter.SPACE, " "), false)) out.add(id);
                    }
                }
            }
            return out.build().toArray();
        }

        /**
         * With the vocabulary's token types known: control tokens are skipped but for a leading BOS, so the text
         * after a BOS or EOS in mid-sequence keeps its space and only the very first piece loses its dummy one, as
         * the Hugging Face library decodes the same ids.
         */
        @Override public String decode(int[] ids) {
            if (specials == null) return t.decode(ids);
            java.util.stream.IntStream.Builder kept = java.util.stream.IntStream.builder();
            for (int i = 0; i < ids.length; i++) if (!specials.isControl(ids[i]) || (i == 0 && ids[i] == bos)) kept.add(ids[i]);
            return t.decode(kept.build().toArray());
        }

        @Override public StreamDecoder newStreamDecoder() { return t.newStreamDecoder(); }

        /** The inner tokenizer's bytes; null for unused ids and the metadata's control tokens, which decode to nothing. */
        @Override public byte[] outputBytes(int id) {
            if (id >= 0 && id < vocabSize() && (unused.get(id) || (specials != null && specials.isControl(id)))) return null;
            return t.outputBytes(id);
        }
        @Override public BitSet unusedIds() { return (BitSet) unused.clone(); }
        @Override public String toString() { return "GGUF tokenizer of " + source + " (" + t + ")"; }
    }

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

    /** Byte-level BPE: an equivalent tokenizer.json (vocabulary, merges, pre-tokenizer, added tokens) for the HF library. */
    private static Tokenizer byteLevelBpe(String source, Map<String, Object> md) {
        String pre = pre(md);
        List<String> regexes = PRE.get(pre);
        if (regexes == null)
            throw new ModelFormatException(source + ": tokenizer.ggml.pre '" + pre + "' is not supported (supported: " + String.join(", ",
                    PRE.keySet().stream().sorted().toList()) + ", and " + String.join(", ", PRE_ALIASES.keySet().stream().sorted().toList())
                    + " as llama-bpe)");
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
            long type = types.isEmpty() ? NORMAL : ((Number) types.get(i)).longValue();
            if (type == CONTROL || type == USER_DEFINED || type == UNKNOWN)
                added.addObject().put("id", i).put("content", tokens.get(i)).put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", type == USER_DEFINED).put("special", type != USER_DEFINED);
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
        bpe.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", IGNORE_MERGES.contains(pre));
        bpe.set("vocab", vocab);
        ArrayNode m = bpe.putArray("merges");
        for (String merge : merges) m.add(merge);

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

    private static void deleteQuietly(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temporary folder left behind
        }
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
            case Gguf g when g.t() instanceof Llama2cTokenizer l -> sentencePiece(l, w, vocabSize, g.addBos(), g.addEos(), g.unused(), g.userDefined());
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

    // ------------------------------------------------------------------ typed metadata

    private static Object required(String source, Map<String, Object> md, String key) {
        Object v = md.get(key);
        if (v == null) throw new ModelFormatException(source + ": metadata key " + key + " is missing");
        return v;
    }

    private static String string(String source, Map<String, Object> md, String key) {
        if (required(source, md, key) instanceof String s) return s;
        throw new ModelFormatException(source + ": metadata key " + key + " is " + md.get(key).getClass().getSimpleName() + ", expected a string");
    }

    private static List<?> list(String source, Map<String, Object> md, String key) {
        if (required(source, md, key) instanceof List<?> l) return l;
        throw new ModelFormatException(source + ": metadata key " + key + " is " + md.get(key).getClass().getSimpleName() + ", expected an array");
    }

    @SuppressWarnings("unchecked")
    private static List<String> strings(String source, Map<String, Object> md, String key) {
        List<?> l = list(source, md, key);
        for (int i = 0; i < l.size(); i++)
            if (!(l.get(i) instanceof String))
                throw new ModelFormatException(source + ": metadata key " + key + "[" + i + "] is not a string");
        return (List<String>) l;
    }

    private static long id(Map<String, Object> md, String key, long dflt) {
        return md.get(key) instanceof Number n ? n.longValue() : dflt;
    }

    /** A bool key, {@code dflt} when absent; any other type is refused (llama.cpp refuses it too). */
    private static boolean flag(String source, Map<String, Object> md, String key, boolean dflt) {
        Object v = md.get(key);
        if (v == null) return dflt;
        if (v instanceof Boolean b) return b;
        throw new ModelFormatException(source + ": metadata key " + key + " is " + v.getClass().getSimpleName() + ", expected a bool");
    }

    /** A special token id: the key's when inside the vocabulary, else {@code dflt} when inside it, else -1. */
    private static int specialId(Map<String, Object> md, String key, long dflt, int n) {
        long v = id(md, key, -1);
        if (v >= 0 && v < n) return (int) v;
        return dflt >= 0 && dflt < n ? (int) dflt : -1;
    }
}
