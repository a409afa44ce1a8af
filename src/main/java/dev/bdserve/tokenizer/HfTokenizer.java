package dev.bdserve.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face {@code tokenizer.json} tokenizer: encoding and full decoding by DJL's binding of the Rust
 * {@code tokenizers} library (truncation and padding off), streaming decoding by our own byte-level
 * assembly, which knows two token spellings:
 * <ul>
 *   <li>byte-level BPE (GPT-2 / Llama-3: every byte spelled by one character of the GPT-2 byte-to-unicode
 *       alphabet, e.g. {@code Ġ} for space);</li>
 *   <li>SentencePiece-style BPE (Llama-2: ▁ for space, {@code <0xHH>} byte-fallback tokens).</li>
 * </ul>
 * BOS / EOS ids come from {@code tokenizer_config.json}, {@code generation_config.json} and {@code config.json}
 * next to the tokenizer.json when present, else from well-known special tokens ({@link HfSpecialIds}).
 *
 * <p>{@code encode(text, true)} adds what the Hugging Face library adds with {@code add_special_tokens}: the special
 * tokens a {@code TemplateProcessing} post-processor puts before and after a single sequence (none without one, as
 * for Qwen2 and GPT-2), with tokenizer_config.json's {@code add_bos_token} / {@code add_eos_token} overriding the BOS
 * and EOS part (Llama's tokenizer classes rebuild their post-processor from them). A BOS is not added to a text whose
 * tokens already start with it.
 *
 * <p>Decoding skips special tokens. The stream decoder drops the leading space of a token that follows BOS
 * when the tokenizer's decoder strips it (Llama-2 style), so for sequences starting with BOS its output
 * equals {@link #decode}; DJL's full decode (Strip decoder) also strips a leading space when there is no BOS.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {
    /** How vocabulary pieces spell bytes. */
    public enum Spelling { BYTE_LEVEL, SENTENCEPIECE, PLAIN }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final HuggingFaceTokenizer djl;
    private final int vocabSize;
    private final HfSpecialIds specials;
    private final Spelling spelling;
    private final boolean stripAfterBos;
    private final byte[][] pieceBytes;   // null = skipped in decoding (special token or unused id)
    private final boolean[] byteToken;
    private final Map<String, Integer> tokenIds;

    private HfTokenizer(Path file, HuggingFaceTokenizer djl, int vocabSize, HfSpecialIds specials, Spelling spelling, boolean stripAfterBos,
                        byte[][] pieceBytes, boolean[] byteToken, Map<String, Integer> tokenIds) {
        this.file = file;
        this.djl = djl;
        this.vocabSize = vocabSize;
        this.specials = specials;
        this.spelling = spelling;
        this.stripAfterBos = stripAfterBos;
        this.pieceBytes = pieceBytes;
        this.byteToken = byteToken;
        this.tokenIds = tokenIds;
    }

    /** Loads {@code tokenizer.json} (a file, or a folder holding one). */
    public static HfTokenizer load(Path path) {
        Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
        if (!Files.isRegularFile(file))
            throw new ModelFormatException("Hugging Face tokenizer file " + file + " does not exist");
        JsonNode root = readJson(file, true);
        JsonNode model = root.path("model");
        if (!model.isObject())
            throw new ModelFormatException("tokenizer file " + file + ": no \"model\" object; is this a Hugging Face tokenizer.json?");
        String type = model.path("type").asText("");

        // ---- pieces: model vocab, then added tokens
        Map<String, Integer> ids = new HashMap<>();
        JsonNode vocab = model.path("vocab");
        if (vocab.isObject()) {
            for (var it = vocab.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0)
                    throw new ModelFormatException("tokenizer file " + file + ": vocab entry \"" + e.getKey()
                            + "\" has id " + e.getValue() + ", expected a non-negative integer");
                ids.put(e.getKey(), e.getValue().asInt());
            }
        } else if (vocab.isArray()) { // Unigram: [[piece, score], ...]
            for (int i = 0; i < vocab.size(); i++) ids.put(vocab.get(i).path(0).asText(), i);
        } else {
            throw new ModelFormatException("tokenizer file " + file + ": model type \"" + type + "\" has no vocab");
        }
        Map<Integer, String> added = new HashMap<>();
        Set<Integer> special = new java.util.HashSet<>();
        for (JsonNode a : root.path("added_tokens")) {
            if (!a.path("id").canConvertToInt() || !a.path("content").isTextual())
                throw new ModelFormatException("tokenizer file " + file + ": malformed added_tokens entry " + a);
            int id = a.path("id").asInt();
            added.put(id, a.path("content").asText());
            ids.putIfAbsent(a.path("content").asText(), id);
            if (a.path("special").asBoolean(false)) special.add(id);
        }
        int size = 0;
        for (int id : ids.values()) size = Math.max(size, id + 1);
        for (int id : added.keySet()) size = Math.max(size, id + 1);
        if (size == 0) throw new ModelFormatException("tokenizer file " + file + ": empty vocabulary");

        // ---- spelling and leading-space handling, from the decoder / pre-tokenizer
        List<JsonNode> decoders = flatten(root.path("decoder"), "decoders");
        List<String> decTypes = decoders.stream().map(d -> d.path("type").asText("")).toList();
        List<String> preTypes = flatten(root.path("pre_tokenizer"), "pretokenizers").stream()
                .map(d -> d.path("type").asText("")).toList();
        Spelling spelling;
        if (decTypes.contains("ByteLevel") || (decTypes.isEmpty() && preTypes.contains("ByteLevel"))) {
            spelling = Spelling.BYTE_LEVEL;
        } else if (decTypes.contains("ByteFallback") || decTypes.contains("Metaspace")
                || model.path("byte_fallback").asBoolean(false)
                || decoders.stream().anyMatch(d -> "Replace".equals(d.path("type").asText())
                        && HfTokenizerJsonWriter.SPACE.equals(d.path("pattern").path("String").asText()))) {
            spelling = Spelling.SENTENCEPIECE;
        } else {
            spelling = Spelling.PLAIN;
        }
        boolean strip = decoders.stream().anyMatch(d ->
                ("Strip".equals(d.path("type").asText()) && d.path("start").asInt(0) >= 1
                        && " ".equals(d.path("content").asText(" ")))
                || ("Metaspace".equals(d.path("type").asText()) && (d.path("add_prefix_space").asBoolean(false)
                        || Set.of("always", "first").contains(d.path("prepend_scheme").asText("")))));

        byte[][] pieces = new byte[size][];
        boolean[] isByte = new boolean[size];
        int[] byteDecoder = spelling == Spelling.BYTE_LEVEL ? ByteLevelAlphabet.decoder() : null;
        for (var e : ids.entrySet()) {
            int id = e.getValue();
            if (added.containsKey(id)) continue;
            String p = e.getKey();
            switch (spelling) {
                case BYTE_LEVEL -> pieces[id] = ByteLevelAlphabet.bytes(p, byteDecoder);
                case SENTENCEPIECE -> {
                    int b = Llama2cTokenizer.parseByteToken(p.getBytes(StandardCharsets.UTF_8));
                    if (b >= 0) {
                        pieces[id] = new byte[]{(byte) b};
                        isByte[id] = true;
                    } else {
                        pieces[id] = p.replace(HfTokenizerJsonWriter.SPACE, " ").getBytes(StandardCharsets.UTF_8);
                    }
                }
                case PLAIN -> pieces[id] = p.getBytes(StandardCharsets.UTF_8);
            }
        }
        // the decoder reads added tokens as any other: a SentencePiece one's ▁ is a space (Gemma's added ▁▁ runs)
        for (var e : added.entrySet()) {
            String content = spelling == Spelling.SENTENCEPIECE ? e.getValue().replace(HfTokenizerJsonWriter.SPACE, " ") : e.getValue();
            pieces[e.getKey()] = special.contains(e.getKey()) ? null : content.getBytes(StandardCharsets.UTF_8);
        }

        // ---- BOS / EOS, and what encode(text, true) adds around the text
        HfSpecialIds specials = HfSpecialIds.read(file, root, ids, size);

        HuggingFaceTokenizer djl;
        try {
            djl = HuggingFaceTokenizer.builder().optTokenizerPath(file).optAddSpecialTokens(false)
                    .optTruncation(false).optPadding(false).build();
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read Hugging Face tokenizer file " + file + ": " + ex.getMessage(), ex);
        } catch (RuntimeException ex) {
            throw new ModelFormatException("tokenizer file " + file + " was rejected by the Hugging Face tokenizers library: "
                    + ex.getMessage(), ex);
        }
        return new HfTokenizer(file, djl, size, specials, spelling, strip, pieces, isByte, Map.copyOf(ids));
    }

    public Path file() { return file; }

    public Spelling spelling() { return spelling; }

    /** Id of a vocabulary or added token spelled exactly {@code piece}, or -1. */
    public int tokenId(String piece) { return tokenIds.getOrDefault(piece, -1); }

    @Override public int vocabSize() { return vocabSize; }
    @Override public int bosId() { return specials.bos(); }
    @Override public int[] eosIds() { return specials.eosIds().clone(); }

    /** The EOS tokenizer_config.json names, else the first of {@link #eosIds}; -1 when there is none. */
    public int eosId() { return specials.eosId(); }

    /** The ids {@code encode(text, true)} puts before the text's tokens (usually BOS, or none). */
    public int[] specialPrefix() { return specials.prefix().clone(); }

    /** The ids {@code encode(text, true)} puts after the text's tokens (usually none). */
    public int[] specialSuffix() { return specials.suffix().clone(); }

    /** Encodes text; with {@code addSpecial} adds {@link #specialPrefix} (unless the text starts with that one token) and {@link #specialSuffix}. */
    @Override
    public int[] encode(String text, boolean addSpecial) {
        long[] ids = djl.encode(text, false, false).getIds();
        int[] prefix = specials.prefix(), suffix = specials.suffix();
        int[] pre = !addSpecial || (prefix.length == 1 && ids.length > 0 && ids[0] == prefix[0]) ? new int[0] : prefix;
        int[] post = addSpecial ? suffix : new int[0];
        int[] out = new int[pre.length + ids.length + post.length];
        System.arraycopy(pre, 0, out, 0, pre.length);
        for (int i = 0; i < ids.length; i++) out[pre.length + i] = (int) ids[i];
        System.arraycopy(post, 0, out, pre.length + ids.length, post.length);
        return out;
    }

    @Override
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            check(ids[i]);
            l[i] = ids[i];
        }
        return djl.decode(l, true);
    }

    private void check(int id) {
        if (id < 0 || id >= vocabSize)
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + file + " (size " + vocabSize + ")");
    }

    /** The piece's bytes as the stream decoder writes them; null for special added tokens. */
    @Override
    public byte[] outputBytes(int id) {
        check(id);
        return pieceBytes[id] == null ? null : pieceBytes[id].clone();
    }

    @Override
    public StreamDecoder newStreamDecoder() {
        return new PieceStreamDecoder(id -> {
            check(id);
            return pieceBytes[id];
        }, id -> byteToken[id], specials.bos(), stripAfterBos);
    }

    @Override public void close() { djl.close(); }

    @Override public String toString() { return "HfTokenizer[" + file + ", " + spelling + ", vocab " + vocabSize + "]"; }

    // ------------------------------------------------------------------ helpers

    /** A JSON file's tree; a missing file is refused when {@code required}, else read as a missing node. */
    static JsonNode readJson(Path f, boolean required) {
        if (!Files.isRegularFile(f)) {
            if (required) throw new ModelFormatException("file " + f + " does not exist");
            return com.fasterxml.jackson.databind.node.MissingNode.getInstance();
        }
        try {
            return JSON.readTree(f.toFile());
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new ModelFormatException("file " + f + " is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f + ": " + e.getMessage(), e);
        }
    }

    /** The steps of a decoder, pre-tokenizer or post-processor, a {@code Sequence}'s (under {@code childKey}) flattened. */
    static List<JsonNode> flatten(JsonNode n, String childKey) {
        List<JsonNode> out = new ArrayList<>();
        if (n == null || n.isMissingNode() || n.isNull()) return out;
        if ("Sequence".equals(n.path("type").asText())) {
            for (JsonNode c : n.path(childKey)) out.addAll(flatten(c, childKey));
        } else {
            out.add(n);
        }
        return out;
    }
}
