package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.gguf.GgufValueType;
import dev.bdserve.model.gguf.GgufWriter;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A SentencePiece-style BPE {@code tokenizer.json} (Llama 2, Mistral, Gemma: ▁ for spaces, {@code <0xHH>} byte
 * fallback, merges) as the metadata of a llama.cpp {@code llama} vocabulary, which merges by piece scores instead of a merge
 * list. Hugging Face's converter ordered the merges by the SentencePiece scores, so a piece's score is minus the rank
 * of the first merge that makes it; that reproduces the merge order wherever two different merges never make the same
 * piece (what is left: a piece made by several merges is formed, under llama.cpp's scores, by whichever pair comes
 * first in the text, as SentencePiece itself does). Pieces no merge makes (single characters, bytes, specials) get
 * the lowest score. Tokens: {@code <unk>} UNKNOWN, special added tokens CONTROL, other added tokens USER_DEFINED,
 * {@code <0xHH>} BYTE, the rest NORMAL, padding up to the model's vocabulary UNUSED. Special ids: BOS, EOS, the
 * further ids ending generation (as end-of-turn / end-of-message), {@code <unk>}, and tokenizer_config.json's
 * {@code pad_token}.
 *
 * <p>Spaces: a {@code Prepend("▁")} + {@code Replace(" ", "▁")} normalizer (or a {@code Metaspace} pre-tokenizer that
 * prepends to the first piece and does not split) is SentencePiece's dummy prefix, {@code add_space_prefix} true; a
 * lone {@code Replace(" ", "▁")} (Gemma; a pre-tokenizer splitting on spaces then finds none) is
 * {@code add_space_prefix} false, as llama.cpp's converter writes Gemma's. The decoder must strip the leading space
 * exactly when one is prepended, or decoding would differ.
 *
 * <p>Refused, naming the file and the part: a model without byte fallback, another space handling, merges of unknown
 * pieces, multi-character pieces no merge makes (llama.cpp would form them, the merge list never), and specials a
 * GGUF vocabulary cannot add.
 */
final class GgufSpmVocab {
    private GgufSpmVocab() {}

    static void write(HfTokenizer t, GgufWriter w, int vocabSize) {
        Path file = t.file();
        String src = "tokenizer file " + file;
        JsonNode root = GgufBpeVocab.read(file);
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText()))
            throw new ModelFormatException(src + ": model type '" + model.path("type").asText() + "' cannot be written as a GGUF llama vocabulary (only BPE)");
        if (!model.path("byte_fallback").asBoolean(false))
            throw new ModelFormatException(src + ": a SentencePiece-style BPE without byte_fallback cannot be written as a GGUF llama vocabulary");
        boolean spacePrefix = spaces(src, root);
        if (t.vocabSize() > vocabSize)
            throw new ModelFormatException(src + ": the tokenizer has " + t.vocabSize() + " tokens, more than the model's vocabulary of " + vocabSize);

        // ---- tokens
        String[] tokens = new String[vocabSize];
        long[] types = new long[vocabSize];
        Map<String, Integer> ids = new HashMap<>();
        for (var it = model.path("vocab").properties().iterator(); it.hasNext(); ) {
            var e = it.next();
            String piece = e.getKey();
            GgufBpeVocab.place(src, tokens, types, ids, e.getValue().asInt(), piece,
                    piece.matches("<0x[0-9A-F]{2}>") ? GgufTokenizers.BYTE : GgufTokenizers.NORMAL);
        }
        String unk = model.path("unk_token").asText(null);
        if (unk != null && ids.containsKey(unk)) types[ids.get(unk)] = GgufTokenizers.UNKNOWN;
        for (JsonNode a : root.path("added_tokens")) {
            String content = a.path("content").asText();
            int id = a.path("id").asInt();
            long type = content.equals(unk) ? GgufTokenizers.UNKNOWN
                    : a.path("special").asBoolean(false) ? GgufTokenizers.CONTROL : GgufTokenizers.USER_DEFINED;
            if (id >= 0 && id < vocabSize && content.equals(tokens[id])) types[id] = type;
            else GgufBpeVocab.place(src, tokens, types, ids, id, content, type);
        }
        for (int b = 0; b < 256; b++)
            if (!ids.containsKey(String.format("<0x%02X>", b)))
                throw new ModelFormatException(src + ": the vocabulary has no byte token <0x" + String.format("%02X", b) + ">; byte fallback needs all 256");

        // ---- scores: minus the rank of the first merge making the piece
        float[] scores = new float[vocabSize];
        Arrays.fill(scores, Float.NaN);
        int rank = 0;
        for (JsonNode m : model.path("merges")) {
            String[] lr = mergeParts(src, m);
            Integer made = ids.get(lr[0] + lr[1]);
            if (made == null || !ids.containsKey(lr[0]) || !ids.containsKey(lr[1]))
                throw new ModelFormatException(src + ": merge " + m + " joins pieces that are not all in the vocabulary");
            if (Float.isNaN(scores[made])) scores[made] = -rank;
            rank++;
        }
        float lowest = -rank;
        for (int i = 0; i < vocabSize; i++) {
            if (tokens[i] == null) {
                tokens[i] = "[PAD" + i + "]";
                if (ids.containsKey(tokens[i]))
                    throw new ModelFormatException(src + ": token " + ids.get(tokens[i]) + " is '" + tokens[i] + "', the name that padding token " + i + " would get");
                types[i] = GgufTokenizers.UNUSED;
            }
            if (Float.isNaN(scores[i])) {
                if (types[i] == GgufTokenizers.NORMAL && tokens[i].codePointCount(0, tokens[i].length()) > 1)
                    throw new ModelFormatException(src + ": piece " + i + " '" + tokens[i] + "' is made by no merge; llama.cpp's score-based "
                            + "merging would form it where the merge list does not");
                scores[i] = lowest;
            }
        }

        // ---- special ids, and whether encoding adds them
        int bos = t.bosId(), eos = t.eosId();
        int[] prefix = t.specialPrefix(), suffix = t.specialSuffix();
        if (prefix.length > 1 || (prefix.length == 1 && prefix[0] != bos))
            throw new ModelFormatException(src + ": encoding adds " + Arrays.toString(prefix) + " before the text; a GGUF vocabulary can add only its BOS (" + bos + ")");
        if (suffix.length > 1 || (suffix.length == 1 && suffix[0] != eos))
            throw new ModelFormatException(src + ": encoding adds " + Arrays.toString(suffix) + " after the text; a GGUF vocabulary can add only its EOS (" + eos + ")");
        int[] eotEom = GgufBpeVocab.endOfTurnAndMessage(src, t, eos, tokens);
        int pad = padding(file, ids);

        List<Double> scoreList = new ArrayList<>(vocabSize);
        for (float s : scores) scoreList.add((double) s);
        w.putString("tokenizer.ggml.model", "llama");
        w.putString("tokenizer.ggml.pre", "default");
        w.putArray("tokenizer.ggml.tokens", GgufValueType.STRING, Arrays.asList(tokens));
        w.putArray("tokenizer.ggml.scores", GgufValueType.FLOAT32, scoreList);
        w.putArray("tokenizer.ggml.token_type", GgufValueType.INT32, Arrays.stream(types).boxed().toList());
        if (bos >= 0) w.putU32("tokenizer.ggml.bos_token_id", bos);
        if (eos >= 0) w.putU32("tokenizer.ggml.eos_token_id", eos);
        if (eotEom[0] >= 0) w.putU32("tokenizer.ggml.eot_token_id", eotEom[0]);
        if (eotEom[1] >= 0) w.putU32("tokenizer.ggml.eom_token_id", eotEom[1]);
        if (unk != null && ids.containsKey(unk)) w.putU32("tokenizer.ggml.unknown_token_id", ids.get(unk));
        if (pad >= 0) w.putU32("tokenizer.ggml.padding_token_id", pad);
        w.putBool("tokenizer.ggml.add_bos_token", prefix.length == 1);
        w.putBool("tokenizer.ggml.add_eos_token", suffix.length == 1);
        w.putBool("tokenizer.ggml.add_space_prefix", spacePrefix);
        GgufBpeVocab.chatTemplates(file.toAbsolutePath().getParent(), w);
    }

    private static String[] mergeParts(String src, JsonNode m) {
        if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) return new String[]{m.get(0).asText(), m.get(1).asText()};
        if (m.isTextual()) {
            String s = m.asText();
            int sp = s.indexOf(' ', 1);
            if (sp > 0 && s.indexOf(' ', sp + 1) < 0) return new String[]{s.substring(0, sp), s.substring(sp + 1)};
        }
        throw new ModelFormatException(src + ": malformed merge " + m);
    }

    /** tokenizer_config.json's {@code pad_token} (a string or an object with its content), -1 when none is named. */
    private static int padding(Path file, Map<String, Integer> ids) {
        Path cfg = file.toAbsolutePath().getParent().resolve("tokenizer_config.json");
        if (!java.nio.file.Files.isRegularFile(cfg)) return -1;
        JsonNode p = GgufBpeVocab.read(cfg).path("pad_token");
        String name = p.isTextual() ? p.asText() : p.path("content").isTextual() ? p.path("content").asText() : null;
        if (name == null) return -1;
        Integer id = ids.get(name);
        if (id == null) throw new ModelFormatException(cfg + ": pad_token '" + name + "' is not a token of the vocabulary");
        return id;
    }

    /**
     * Whether a space is prepended to the text: spaces become ▁ with one prepended (SentencePiece's
     * {@code add_dummy_prefix}, llama.cpp's {@code add_space_prefix}) with the legacy normalizer pair or a Metaspace
     * pre-tokenizer that does not split; without one with a lone Replace normalizer (Gemma), after which a
     * pre-tokenizer splitting on spaces is a no-op. The decoder must strip a leading space exactly in the first case.
     */
    private static boolean spaces(String src, JsonNode root) {
        JsonNode n = root.path("normalizer"), p = root.path("pre_tokenizer");
        List<String> norm = new ArrayList<>();
        List<JsonNode> steps = new ArrayList<>();
        if ("Sequence".equals(n.path("type").asText())) n.path("normalizers").forEach(steps::add);
        else if (!n.isMissingNode() && !n.isNull()) steps.add(n);
        for (JsonNode s : steps) norm.add(s.path("type").asText());
        boolean legacy = norm.equals(List.of("Prepend", "Replace")) && HfTokenizerJsonWriter.SPACE.equals(steps.get(0).path("prepend").asText())
                && " ".equals(steps.get(1).path("pattern").path("String").asText()) && HfTokenizerJsonWriter.SPACE.equals(steps.get(1).path("content").asText())
                && (p.isMissingNode() || p.isNull());
        boolean metaspace = norm.isEmpty() && "Metaspace".equals(p.path("type").asText())
                && HfTokenizerJsonWriter.SPACE.equals(p.path("replacement").asText())
                && List.of("first", "always").contains(p.path("prepend_scheme").asText("always")) && !p.path("split").asBoolean(true);
        boolean replaceOnly = norm.equals(List.of("Replace")) && " ".equals(steps.get(0).path("pattern").path("String").asText())
                && HfTokenizerJsonWriter.SPACE.equals(steps.get(0).path("content").asText())
                && (p.isMissingNode() || p.isNull() || ("Split".equals(p.path("type").asText())
                        && " ".equals(p.path("pattern").path("String").asText()) && !p.path("invert").asBoolean(false)));
        if (!legacy && !metaspace && !replaceOnly)
            throw new ModelFormatException(src + ": normalizer " + n + " with pre-tokenizer " + p + " cannot be written as a GGUF llama vocabulary"
                    + " (supported: Prepend ▁ then Replace ' ' by ▁, or a Metaspace that prepends ▁ and does not split, or Replace ' ' by ▁"
                    + " alone, optionally with a pre-tokenizer splitting on ' ')");
        boolean prefix = !replaceOnly;
        JsonNode d = root.path("decoder");
        List<JsonNode> decoders = new ArrayList<>();
        if ("Sequence".equals(d.path("type").asText())) d.path("decoders").forEach(decoders::add);
        else if (!d.isMissingNode() && !d.isNull()) decoders.add(d);
        boolean strips = decoders.stream().anyMatch(x -> ("Strip".equals(x.path("type").asText()) && x.path("start").asInt(0) >= 1
                && " ".equals(x.path("content").asText(" "))) || ("Metaspace".equals(x.path("type").asText())
                && (x.path("add_prefix_space").asBoolean(false) || List.of("first", "always").contains(x.path("prepend_scheme").asText("")))));
        if (strips != prefix)
            throw new ModelFormatException(src + ": decoder " + d + (strips ? " strips" : " does not strip") + " a leading space but encoding "
                    + (prefix ? "prepends one" : "prepends none") + "; a GGUF llama vocabulary decodes as it encodes");
        return prefix;
    }
}
