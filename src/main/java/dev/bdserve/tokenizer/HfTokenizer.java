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
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
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
 * next to the tokenizer.json when present, else from well-known special tokens.
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
    private final int bosId;
    private final int[] eosIds;
    private final int eosId;
    private final int[] prefix, suffix;  // added around the text by encode(text, true)
    private final Spelling spelling;
    private final boolean stripAfterBos;
    private final byte[][] pieceBytes;   // null = skipped in decoding (special token or unused id)
    private final boolean[] byteToken;
    private final Map<String, Integer> tokenIds;

    private HfTokenizer(Path file, HuggingFaceTokenizer djl, int vocabSize, int bosId, int[] eosIds, int eosId, int[] prefix, int[] suffix,
                        Spelling spelling, boolean stripAfterBos, byte[][] pieceBytes, boolean[] byteToken, Map<String, Integer> tokenIds) {
        this.file = file;
        this.djl = djl;
        this.vocabSize = vocabSize;
        this.bosId = bosId;
        this.eosIds = eosIds;
        this.eosId = eosId;
        this.prefix = prefix;
        this.suffix = suffix;
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
        Path dir = file.toAbsolutePath().getParent();
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
        int[] byteDecoder = spelling == Spelling.BYTE_LEVEL ? byteLevelDecoder() : null;
        for (var e : ids.entrySet()) {
            int id = e.getValue();
            if (added.containsKey(id)) continue;
            String p = e.getKey();
            switch (spelling) {
                case BYTE_LEVEL -> pieces[id] = byteLevelBytes(p, byteDecoder);
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

        // ---- BOS / EOS
        JsonNode tokCfg = readJson(dir.resolve("tokenizer_config.json"), false);
        JsonNode genCfg = readJson(dir.resolve("generation_config.json"), false);
        JsonNode cfg = readJson(dir.resolve("config.json"), false);
        int bos = tokenId(ids, tokenName(tokCfg.path("bos_token")));
        if (bos < 0) bos = firstId(genCfg.path("bos_token_id"));
        if (bos < 0) bos = firstId(cfg.path("bos_token_id"));
        int[][] around = templateSpecials(root.path("post_processor"), ids);
        if (bos < 0 && around[0].length > 0) bos = around[0][0];
        if (bos < 0) bos = firstKnown(ids, "<|begin_of_text|>", "<s>", "<bos>");
        Set<Integer> eos = new LinkedHashSet<>();
        addIds(eos, genCfg.path("eos_token_id"));
        addIds(eos, cfg.path("eos_token_id"));
        int e = tokenId(ids, tokenName(tokCfg.path("eos_token")));
        if (e >= 0) eos.add(e);
        if (eos.isEmpty()) {
            for (String s : List.of("</s>", "<|end_of_text|>", "<|eot_id|>", "<eos>")) {
                Integer id = ids.get(s);
                if (id != null) eos.add(id);
            }
        }
        int finalSize = size;
        eos.removeIf(x -> x < 0 || x >= finalSize);
        if (bos >= size)
            throw new ModelFormatException("tokenizer files in " + dir + ": bos token id " + bos + " outside the vocabulary of " + size);
        int firstEos = e >= 0 ? e : eos.isEmpty() ? -1 : eos.iterator().next();
        int[] prefix = withFlag(around[0], bos, tokCfg.path("add_bos_token"), true);
        int[] suffix = withFlag(around[1], firstEos, tokCfg.path("add_eos_token"), false);
        for (int[] a : new int[][]{prefix, suffix})
            for (int id : a)
                if (id < 0 || id >= size)
                    throw new ModelFormatException("tokenizer file " + file + ": the post-processor adds token id " + id
                            + ", outside the vocabulary of " + size);

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
        return new HfTokenizer(file, djl, size, bos, eos.stream().mapToInt(Integer::intValue).toArray(),
                firstEos >= 0 && firstEos < size ? firstEos : -1, prefix, suffix,
                spelling, strip, pieces, isByte, Map.copyOf(ids));
    }

    public Path file() { return file; }

    public Spelling spelling() { return spelling; }

    /** Id of a vocabulary or added token spelled exactly {@code piece}, or -1. */
    public int tokenId(String piece) { return tokenIds.getOrDefault(piece, -1); }

    @Override public int vocabSize() { return vocabSize; }
    @Override public int bosId() { return bosId; }
    @Override public int[] eosIds() { return eosIds.clone(); }

    /** The EOS tokenizer_config.json names, else the first of {@link #eosIds}; -1 when there is none. */
    public int eosId() { return eosId; }

    /** The ids {@code encode(text, true)} puts before the text's tokens (usually BOS, or none). */
    public int[] specialPrefix() { return prefix.clone(); }

    /** The ids {@code encode(text, true)} puts after the text's tokens (usually none). */
    public int[] specialSuffix() { return suffix.clone(); }

    /** Encodes text; with {@code addSpecial} adds {@link #specialPrefix} (unless the text starts with that one token) and {@link #specialSuffix}. */
    @Override
    public int[] encode(String text, boolean addSpecial) {
        long[] ids = djl.encode(text, false, false).getIds();
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
        return new StreamDecoder() {
            private final Utf8Stream utf8 = new Utf8Stream();
            private int prev = -1;

            @Override public String push(int id) {
                check(id);
                byte[] p = pieceBytes[id];
                String s = "";
                if (p != null) {
                    int skip = stripAfterBos && prev == bosId && bosId >= 0 && !byteToken[id]
                            && p.length > 0 && p[0] == ' ' ? 1 : 0;
                    s = utf8.push(p, skip, p.length - skip);
                }
                prev = id;
                return s;
            }

            @Override public String flush() { return utf8.flush(); }
        };
    }

    @Override public void close() { djl.close(); }

    @Override public String toString() { return "HfTokenizer[" + file + ", " + spelling + ", vocab " + vocabSize + "]"; }

    // ------------------------------------------------------------------ helpers

    private static JsonNode readJson(Path f, boolean required) {
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

    private static List<JsonNode> flatten(JsonNode n, String childKey) {
        List<JsonNode> out = new ArrayList<>();
        if (n == null || n.isMissingNode() || n.isNull()) return out;
        if ("Sequence".equals(n.path("type").asText())) {
            for (JsonNode c : n.path(childKey)) out.addAll(flatten(c, childKey));
        } else {
            out.add(n);
        }
        return out;
    }

    /**
     * The ids a TemplateProcessing post-processor puts before and after a single sequence: {prefix, suffix} (both
     * empty without one).
     */
    private static int[][] templateSpecials(JsonNode post, Map<String, Integer> ids) {
        for (JsonNode p : flatten(post, "processors")) {
            if (!"TemplateProcessing".equals(p.path("type").asText())) continue;
            List<Integer> before = new ArrayList<>(), after = new ArrayList<>();
            boolean seenText = false;
            for (JsonNode piece : p.path("single")) {
                if (piece.has("Sequence")) {
                    seenText = true;
                    continue;
                }
                JsonNode st = piece.path("SpecialToken");
                if (!st.isObject()) continue;
                String name = st.path("id").asText();
                JsonNode listed = p.path("special_tokens").path(name).path("ids");
                List<Integer> target = seenText ? after : before;
                if (listed.isArray() && !listed.isEmpty()) {
                    for (JsonNode i : listed) if (i.canConvertToInt()) target.add(i.asInt());
                } else if (ids.containsKey(name)) {
                    target.add(ids.get(name));
                }
            }
            return new int[][]{before.stream().mapToInt(Integer::intValue).toArray(), after.stream().mapToInt(Integer::intValue).toArray()};
        }
        return new int[][]{new int[0], new int[0]};
    }

    /**
     * {@code around} as tokenizer_config.json's boolean {@code flag} (add_bos_token / add_eos_token) sets it: with
     * true, {@code id} added at the start (or end) when missing; with false, {@code id} removed; unset, unchanged.
     */
    private static int[] withFlag(int[] around, int id, JsonNode flag, boolean atStart) {
        if (!flag.isBoolean() || id < 0) return around;
        boolean has = Arrays.stream(around).anyMatch(x -> x == id);
        if (!flag.asBoolean()) return Arrays.stream(around).filter(x -> x != id).toArray();
        if (has) return around;
        int[] out = new int[around.length + 1];
        System.arraycopy(around, 0, out, atStart ? 1 : 0, around.length);
        out[atStart ? 0 : around.length] = id;
        return out;
    }

    private static String tokenName(JsonNode n) {
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.path("content").asText();
        return null;
    }

    private static int tokenId(Map<String, Integer> ids, String name) {
        return name == null ? -1 : ids.getOrDefault(name, -1);
    }

    private static int firstId(JsonNode n) {
        if (n.canConvertToInt()) return n.asInt();
        if (n.isArray() && !n.isEmpty() && n.get(0).canConvertToInt()) return n.get(0).asInt();
        return -1;
    }

    private static void addIds(Set<Integer> out, JsonNode n) {
        if (n.canConvertToInt()) out.add(n.asInt());
        else if (n.isArray()) for (JsonNode x : n) if (x.canConvertToInt()) out.add(x.asInt());
    }

    private static int firstKnown(Map<String, Integer> ids, String... names) {
        for (String s : names) {
            Integer id = ids.get(s);
            if (id != null) return id;
        }
        return -1;
    }

    /** GPT-2's bytes_to_unicode, inverted: char → byte (or -1). */
    static int[] byteLevelDecoder() {
        int[] dec = new int[512];
        Arrays.fill(dec, -1);
        char[] enc = byteLevelEncoder();
        for (int b = 0; b < 256; b++) dec[enc[b]] = b;
        return dec;
    }

    /** GPT-2's bytes_to_unicode: byte → char. */
    static char[] byteLevelEncoder() {
        char[] enc = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            enc[b] = printable ? (char) b : (char) (256 + n++);
        }
        return enc;
    }

    private static byte[] byteLevelBytes(String piece, int[] dec) {
        var out = new java.io.ByteArrayOutputStream(piece.length());
        for (int i = 0; i < piece.length(); ) {
            int cp = piece.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < dec.length && dec[cp] >= 0) out.write(dec[cp]);
            else out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
        }
        return out.toByteArray();
    }
}
