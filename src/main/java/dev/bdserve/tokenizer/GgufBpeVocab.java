package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.gguf.GgufValueType;
import dev.bdserve.model.gguf.GgufWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A byte-level BPE {@code tokenizer.json} (GPT-2, Llama 3, Qwen2) as the metadata of a llama.cpp {@code gpt2}
 * vocabulary: tokens (vocabulary entries NORMAL, special added tokens CONTROL, other added tokens USER_DEFINED, ids
 * without a token and padding up to the model's vocabulary size {@code [PADn]} UNUSED), merges, the
 * {@code tokenizer.ggml.pre} whose regexes equal the pre-tokenizer's, BOS / EOS ids, whether encoding adds them (the
 * tokenizer's post-processor and tokenizer_config.json's add_bos_token / add_eos_token, see {@link HfTokenizer}), the
 * further ids that end generation as end-of-turn / end-of-message ids, and tokenizer_config.json's chat templates.
 *
 * <p>What the metadata cannot say is refused, naming the file and the part: another normalizer than none or NFC,
 * another pre-tokenizer than the supported regexes, merges of parts with spaces, added tokens that strip spaces
 * or match single words, a post-processor adding anything but one BOS before and one EOS after the text, an
 * {@code ignore_merges} unlike llama.cpp's for that pre-tokenizer, more than three ids ending generation. Accepted
 * with a loss: an NFC normalizer (GGUF files have none, so llama.cpp and bdserve encode text that is not in NFC as
 * it comes, as every Qwen2 GGUF file does).
 */
final class GgufBpeVocab {
    private GgufBpeVocab() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Writes {@code t}'s vocabulary; {@code vocabSize} (at least the tokenizer's) pads the tokens to the model's. */
    static void write(HfTokenizer t, GgufWriter w, int vocabSize) {
        Path file = t.file();
        String src = "tokenizer file " + file;
        JsonNode root = read(file);
        if (t.spelling() != HfTokenizer.Spelling.BYTE_LEVEL)
            throw new ModelFormatException(src + ": only byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2) can be written as a GGUF gpt2 "
                    + "vocabulary; this one spells its pieces " + t.spelling());
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText()))
            throw new ModelFormatException(src + ": model type '" + model.path("type").asText() + "' cannot be written as a GGUF gpt2 vocabulary (only BPE)");
        if (model.path("byte_fallback").asBoolean(false))
            throw new ModelFormatException(src + ": a byte-level BPE with byte_fallback cannot be written as a GGUF gpt2 vocabulary");
        for (String k : List.of("continuing_subword_prefix", "end_of_word_suffix"))
            if (!model.path(k).asText("").isEmpty())
                throw new ModelFormatException(src + ": model." + k + " '" + model.path(k).asText() + "' cannot be written as a GGUF gpt2 vocabulary");
        if (model.path("dropout").isNumber() && model.path("dropout").asDouble() > 0)
            throw new ModelFormatException(src + ": BPE dropout " + model.path("dropout").asDouble() + " cannot be written as a GGUF gpt2 vocabulary");
        normalizer(src, root.path("normalizer"));
        String pre = pre(src, root.path("pre_tokenizer"));
        boolean ignoreMerges = model.path("ignore_merges").asBoolean(false);
        if (ignoreMerges != GgufPreTokenizers.IGNORE_MERGES.contains(pre))
            throw new ModelFormatException(src + ": model.ignore_merges is " + ignoreMerges + " but llama.cpp's " + pre
                    + " pre-tokenizer " + (ignoreMerges ? "merges every pre-token" : "takes a pre-token that is a vocabulary entry whole")
                    + "; the GGUF file would tokenize differently");
        postProcessor(src, root.path("post_processor"));

        // ---- tokens: the model's vocabulary, then the added tokens
        if (t.vocabSize() > vocabSize)
            throw new ModelFormatException(src + ": the tokenizer has " + t.vocabSize() + " tokens, more than the model's vocabulary of " + vocabSize);
        String[] tokens = new String[vocabSize];
        long[] types = new long[vocabSize];
        Map<String, Integer> ids = new HashMap<>();
        for (var it = model.path("vocab").properties().iterator(); it.hasNext(); ) {
            var e = it.next();
            place(src, tokens, types, ids, e.getValue().asInt(), e.getKey(), GgufTokenizers.NORMAL);
        }
        for (JsonNode a : root.path("added_tokens")) {
            String content = a.path("content").asText();
            for (String k : List.of("lstrip", "rstrip", "single_word"))
                if (a.path(k).asBoolean(false))
                    throw new ModelFormatException(src + ": added token '" + content + "' has " + k + " true, which a GGUF gpt2 vocabulary cannot express");
            int id = a.path("id").asInt();
            long type = a.path("special").asBoolean(false) ? GgufTokenizers.CONTROL : GgufTokenizers.USER_DEFINED;
            if (id >= 0 && id < vocabSize && content.equals(tokens[id])) types[id] = type;  // also in the vocabulary
            else place(src, tokens, types, ids, id, content, type);
        }
        char[] bytes = ByteLevelAlphabet.encoder();
        for (char b : bytes)
            if (!ids.containsKey(String.valueOf(b)))
                throw new ModelFormatException(src + ": the vocabulary has no token for the byte character '" + b
                        + "'; a GGUF gpt2 vocabulary needs all 256");
        for (int i = 0; i < vocabSize; i++) {
            if (tokens[i] != null) continue;
            String pad = "[PAD" + i + "]";
            if (ids.containsKey(pad))
                throw new ModelFormatException(src + ": token " + ids.get(pad) + " is '" + pad + "', the name that padding token " + i + " would get");
            tokens[i] = pad;
            types[i] = GgufTokenizers.UNUSED;
        }

        // ---- merges, "left right"
        List<String> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            String left, right;
            if (m.isTextual()) {
                int sp = m.asText().indexOf(' ', 1);
                if (sp < 0 || m.asText().indexOf(' ', sp + 1) >= 0)
                    throw new ModelFormatException(src + ": merge '" + m.asText() + "' is not two pieces separated by one space");
                left = m.asText().substring(0, sp);
                right = m.asText().substring(sp + 1);
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                left = m.get(0).asText();
                right = m.get(1).asText();
            } else {
                throw new ModelFormatException(src + ": malformed merge " + m);
            }
            if (left.isEmpty() || right.isEmpty() || left.contains(" ") || right.contains(" "))
                throw new ModelFormatException(src + ": merge " + m + " has an empty piece or one with a space, which GGUF merges cannot express");
            merges.add(left + " " + right);
        }

        // ---- special ids, and whether encoding adds them
        int bos = t.bosId(), eos = t.eosId();
        int[] prefix = t.specialPrefix(), suffix = t.specialSuffix();
        if (prefix.length > 1 || (prefix.length == 1 && prefix[0] != bos))
            throw new ModelFormatException(src + ": encoding adds " + Arrays.toString(prefix) + " before the text; a GGUF vocabulary can add only its BOS ("
                    + bos + ")");
        if (suffix.length > 1)
            throw new ModelFormatException(src + ": encoding adds " + Arrays.toString(suffix) + " after the text; a GGUF vocabulary can add only its EOS");
        if (suffix.length == 1) {
            if (eos >= 0 && suffix[0] != eos)
                throw new ModelFormatException(src + ": encoding adds token " + suffix[0] + " after the text but the EOS is " + eos
                        + "; a GGUF vocabulary can add only its EOS");
            eos = suffix[0];
        }

        int[] eotEom = endOfTurnAndMessage(src, t, eos, tokens);
        int eot = eotEom[0], eom = eotEom[1];

        w.putString("tokenizer.ggml.model", "gpt2");
        w.putString("tokenizer.ggml.pre", pre);
        w.putArray("tokenizer.ggml.tokens", GgufValueType.STRING, Arrays.asList(tokens));
        w.putArray("tokenizer.ggml.token_type", GgufValueType.INT32, Arrays.stream(types).boxed().toList());
        w.putArray("tokenizer.ggml.merges", GgufValueType.STRING, merges);
        if (bos >= 0) w.putU32("tokenizer.ggml.bos_token_id", bos);
        if (eos >= 0) w.putU32("tokenizer.ggml.eos_token_id", eos);
        if (eot >= 0) w.putU32("tokenizer.ggml.eot_token_id", eot);
        if (eom >= 0) w.putU32("tokenizer.ggml.eom_token_id", eom);
        w.putBool("tokenizer.ggml.add_bos_token", prefix.length == 1);
        w.putBool("tokenizer.ggml.add_eos_token", suffix.length == 1);
        chatTemplates(file.toAbsolutePath().getParent(), w);
    }

    /**
     * The ids other than {@code eos} that end generation (generation_config.json's eos_token_id list, tokenizer_config.json's
     * eos_token) as {end-of-turn, end-of-message} (-1: none), the two others GGUF names and llama.cpp stops at: as
     * end-of-message when spelled so, else end-of-turn. More than two are refused.
     */
    static int[] endOfTurnAndMessage(String src, HfTokenizer t, int eos, String[] tokens) {
        int eot = -1, eom = -1;
        List<Integer> more = new ArrayList<>();
        for (int id : t.eosIds()) if (id != eos) more.add(id);
        for (int id : more) if (eom < 0 && "<|eom_id|>".equals(tokens[id])) eom = id;
        for (int id : more) {
            if (id == eom) continue;
            if (eot < 0) eot = id;
            else if (eom < 0) eom = id;
            else throw new ModelFormatException(src + ": generation ends at tokens " + Arrays.toString(t.eosIds())
                    + "; a GGUF vocabulary names at most three (eos, eot, eom)");
        }
        return new int[]{eot, eom};
    }

    static void place(String src, String[] tokens, long[] types, Map<String, Integer> ids, int id, String token, long type) {
        if (id < 0 || id >= tokens.length)
            throw new ModelFormatException(src + ": token '" + token + "' has id " + id + ", outside the vocabulary of " + tokens.length);
        if (token.isEmpty())
            throw new ModelFormatException(src + ": token " + id + " is empty, which a GGUF vocabulary cannot hold");
        if (tokens[id] != null)
            throw new ModelFormatException(src + ": id " + id + " is both '" + tokens[id] + "' and '" + token + "'");
        Integer other = ids.putIfAbsent(token, id);
        if (other != null)
            throw new ModelFormatException(src + ": '" + token + "' is both token " + other + " and " + id + "; GGUF tokens must be unique");
        tokens[id] = token;
        types[id] = type;
    }

    /** None, or NFC (dropped, as llama.cpp's converter drops it); anything else is refused. */
    private static void normalizer(String src, JsonNode n) {
        if (n.isMissingNode() || n.isNull()) return;
        List<JsonNode> steps = new ArrayList<>();
        if ("Sequence".equals(n.path("type").asText())) n.path("normalizers").forEach(steps::add);
        else steps.add(n);
        for (JsonNode s : steps)
            if (!"NFC".equals(s.path("type").asText()))
                throw new ModelFormatException(src + ": normalizer " + s.path("type").asText(s.toString())
                        + " cannot be written to a GGUF gpt2 vocabulary (only none or NFC)");
    }

    /** The {@code tokenizer.ggml.pre} whose regexes the pre-tokenizer applies, or a refusal naming them. */
    private static String pre(String src, JsonNode n) {
        List<JsonNode> steps = new ArrayList<>();
        if ("Sequence".equals(n.path("type").asText())) n.path("pretokenizers").forEach(steps::add);
        else if (!n.isMissingNode() && !n.isNull()) steps.add(n);
        List<String> regexes = new ArrayList<>();
        boolean byteLevel = false;
        for (JsonNode s : steps) {
            String type = s.path("type").asText();
            if (byteLevel)
                throw new ModelFormatException(src + ": pre-tokenizer step " + type + " after ByteLevel cannot be written to a GGUF gpt2 vocabulary");
            if (type.equals("Split") && s.path("pattern").path("Regex").isTextual()
                    && "Isolated".equals(s.path("behavior").asText()) && !s.path("invert").asBoolean(false)) {
                regexes.add(s.path("pattern").path("Regex").asText());
            } else if (type.equals("ByteLevel") && !s.path("add_prefix_space").asBoolean(false)) {
                byteLevel = true;
                if (s.path("use_regex").asBoolean(true)) regexes.add(GgufPreTokenizers.REGEXES.get("gpt-2").getFirst());
            } else {
                throw new ModelFormatException(src + ": pre-tokenizer step " + s + " cannot be written to a GGUF gpt2 vocabulary"
                        + " (supported: Split by a regex, Isolated, then ByteLevel without add_prefix_space)");
            }
        }
        if (!byteLevel)
            throw new ModelFormatException(src + ": the pre-tokenizer has no ByteLevel step; a GGUF gpt2 vocabulary is byte-level");
        for (var e : GgufPreTokenizers.REGEXES.entrySet()) if (e.getValue().equals(regexes)) return e.getKey();
        throw new ModelFormatException(src + ": pre-tokenizer regex " + String.join(" then ", regexes.stream().map(r -> "'" + r + "'").toList())
                + " is not one of those llama.cpp names that bdserve supports (" + String.join(", ", GgufPreTokenizers.REGEXES.keySet().stream().sorted().toList()) + ")");
    }

    /** None, ByteLevel or TemplateProcessing (whose specials {@link HfTokenizer} reads); others are refused. */
    private static void postProcessor(String src, JsonNode n) {
        List<JsonNode> steps = new ArrayList<>();
        if ("Sequence".equals(n.path("type").asText())) n.path("processors").forEach(steps::add);
        else if (!n.isMissingNode() && !n.isNull()) steps.add(n);
        for (JsonNode s : steps) {
            String type = s.path("type").asText();
            if (!type.equals("ByteLevel") && !type.equals("TemplateProcessing"))
                throw new ModelFormatException(src + ": post-processor " + type + " cannot be written to a GGUF gpt2 vocabulary"
                        + " (supported: ByteLevel, TemplateProcessing)");
        }
    }

    /**
     * tokenizer_config.json's chat template, as bdserve's chat template finds it for the folder: a string, or of a
     * list of named templates the one named default (else the first) as {@code tokenizer.chat_template} and the
     * others as {@code tokenizer.chat_template.NAME}, listed in {@code tokenizer.chat_templates}.
     */
    static void chatTemplates(Path dir, GgufWriter w) {
        Path cfgFile = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(cfgFile)) return;
        JsonNode t = read(cfgFile).path("chat_template");
        if (t.isTextual()) {
            w.putString("tokenizer.chat_template", t.asText());
            return;
        }
        if (!t.isArray() || t.isEmpty()) return;
        Map<String, String> named = new LinkedHashMap<>();
        for (JsonNode e : t) {
            String name = e.path("name").asText(""), tpl = e.path("template").asText(null);
            if (tpl == null || name.isEmpty()) continue;
            if (!name.matches("[A-Za-z0-9_]+"))
                throw new ModelFormatException(cfgFile + ": chat template name '" + name + "' is not a GGUF key part (letters, digits, _)");
            named.putIfAbsent(name, tpl);
        }
        String main = named.containsKey("default") ? "default" : named.keySet().stream().findFirst().orElse(null);
        if (main == null) return;
        w.putString("tokenizer.chat_template", named.remove(main));
        if (named.isEmpty()) return;
        for (var e : named.entrySet()) w.putString("tokenizer.chat_template." + e.getKey(), e.getValue());
        w.putArray("tokenizer.chat_templates", GgufValueType.STRING, List.copyOf(named.keySet()));
    }

    static JsonNode read(Path f) {
        try {
            return JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f + ": " + e.getMessage(), e);
        }
    }
}
