package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Converts a llama2.c tokenizer ({@link Llama2cTokenizer}) into an equivalent Hugging Face
 * {@code tokenizer.json} in the style of Llama-2's: a BPE model with {@code byte_fallback} and
 * {@code fuse_unk}, vocabulary pieces with ▁ for spaces, normalizer Prepend("▁") + Replace(" ", "▁"), no
 * pre-tokenizer, decoder Replace(▁→space) + ByteFallback + Fuse + Strip(1 leading space), special added
 * tokens {@code <unk>}/{@code <s>}/{@code </s>} and a TemplateProcessing post-processor adding {@code <s>}.
 *
 * <p>Merges are derived from the scores: a merge {@code "a b"} for every split of a token into two vocabulary
 * tokens, ordered by the merged token's score (descending, then id), which reproduces llama2.c's
 * highest-score-first pair merging. Also writes a {@code tokenizer_config.json}
 * (bos/eos/unk tokens, add_bos_token true) and {@code special_tokens_map.json}.
 */
public final class HfTokenizerJsonWriter {
    static final String SPACE = "\u2581"; // ▁
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private HfTokenizerJsonWriter() {}

    /** Reads a llama2.c tokenizer file and writes its Hugging Face equivalent into {@code dir}. */
    public static void write(Path llama2cTokenizerFile, Path dir) { write(Llama2cTokenizer.load(llama2cTokenizerFile), dir); }

    /** Writes {@code tokenizer.json}, {@code tokenizer_config.json} and {@code special_tokens_map.json} into {@code dir}. */
    public static void write(Llama2cTokenizer tok, Path dir) { write(tok, dir, -1); }

    /**
     * As {@link #write(Llama2cTokenizer, Path)}; {@code modelMaxLength > 0} is recorded as
     * {@code model_max_length} in tokenizer_config.json (e.g. the checkpoint's seq_len).
     */
    public static void write(Llama2cTokenizer tok, Path dir, int modelMaxLength) {
        try {
            Files.createDirectories(dir);
            JSON.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizerJson(tok));
            ObjectNode cfg = tokenizerConfig();
            if (modelMaxLength > 0) cfg.put("model_max_length", modelMaxLength);
            JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), cfg);
            JSON.writeValue(dir.resolve("special_tokens_map.json").toFile(), specialTokensMap());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the Hugging Face tokenizer files into " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The HF piece for llama2.c token {@code id} (▁ for spaces; control tokens get their canonical names). */
    static String piece(Llama2cTokenizer tok, int id) {
        switch (id) {
            case Llama2cTokenizer.UNK: return "<unk>";
            case Llama2cTokenizer.BOS: return "<s>";
            case Llama2cTokenizer.EOS: return "</s>";
            default:
        }
        String s;
        try {
            s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(tok.tokenBytes(id))).toString();
        } catch (CharacterCodingException e) {
            throw new ModelFormatException("llama2.c tokenizer file " + tok.source() + ": token " + id
                    + " is not valid UTF-8 and cannot be written as a tokenizer.json piece");
        }
        return tok.isByteToken(id) ? s : s.replace(" ", SPACE);
    }

    /** Builds the tokenizer.json tree. */
    public static ObjectNode tokenizerJson(Llama2cTokenizer tok) {
        if (!tok.layout().equals(Llama2cTokenizer.Layout.llama2c()))
            throw new IllegalArgumentException(tok.source() + ": only a vocabulary in llama2.c's layout (<unk>, <s>, </s> at 0, 1, 2, a dummy space"
                    + " prefix) can be written as a Llama-2 style tokenizer.json, not " + tok.layout());
        int n = tok.vocabSize();
        String[] pieces = new String[n];
        Map<String, Integer> ids = HashMap.newHashMap(n);
        ObjectNode vocab = F.objectNode();
        for (int i = 0; i < n; i++) {
            pieces[i] = piece(tok, i);
            Integer dup = ids.putIfAbsent(pieces[i], i);
            if (dup != null)
                throw new ModelFormatException("llama2.c tokenizer file " + tok.source() + ": tokens " + dup + " and " + i
                        + " are both \"" + pieces[i] + "\"; a tokenizer.json vocabulary needs unique pieces");
            vocab.put(pieces[i], i);
        }

        record Merge(int left, int right, int merged, float score) {}
        List<Merge> merges = new ArrayList<>();
        for (int t = Llama2cTokenizer.EOS + 1; t < n; t++) {
            if (tok.isByteToken(t)) continue;
            String s = pieces[t];
            for (int cut = s.offsetByCodePoints(0, 1); cut < s.length(); cut = s.offsetByCodePoints(cut, 1)) {
                Integer l = ids.get(s.substring(0, cut)), r = ids.get(s.substring(cut));
                if (l != null && r != null && mergeable(tok, l) && mergeable(tok, r))
                    merges.add(new Merge(l, r, t, tok.score(t)));
            }
        }
        merges.sort(Comparator.comparingDouble((Merge m) -> -m.score).thenComparingInt(Merge::merged)
                .thenComparingInt(Merge::left));
        ArrayNode mergeArr = F.arrayNode(merges.size());
        for (Merge m : merges) {
            String l = pieces[m.left], r = pieces[m.right];
            if (l.contains(" ") || r.contains(" "))
                throw new ModelFormatException("llama2.c tokenizer file " + tok.source() + ": piece with a space cannot be a merge");
            mergeArr.add(l + " " + r);
        }

        ObjectNode root = F.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i <= Llama2cTokenizer.EOS; i++) {
            ObjectNode a = added.addObject();
            a.put("id", i);
            a.put("content", pieces[i]);
            a.put("single_word", false);
            a.put("lstrip", false);
            a.put("rstrip", false);
            a.put("normalized", false);
            a.put("special", true);
        }
        ObjectNode norm = root.putObject("normalizer");
        norm.put("type", "Sequence");
        ArrayNode norms = norm.putArray("normalizers");
        norms.addObject().put("type", "Prepend").put("prepend", SPACE);
        ObjectNode repl = norms.addObject().put("type", "Replace");
        repl.putObject("pattern").put("String", " ");
        repl.put("content", SPACE);
        root.putNull("pre_tokenizer");

        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 1);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode bos = post.putObject("special_tokens").putObject("<s>");
        bos.put("id", "<s>");
        bos.putArray("ids").add(Llama2cTokenizer.BOS);
        bos.putArray("tokens").add("<s>");

        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "Sequence");
        ArrayNode decs = dec.putArray("decoders");
        ObjectNode r1 = decs.addObject().put("type", "Replace");
        r1.putObject("pattern").put("String", SPACE);
        r1.put("content", " ");
        decs.addObject().put("type", "ByteFallback");
        decs.addObject().put("type", "Fuse");
        decs.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);

        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", "<unk>");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        model.put("ignore_merges", false);
        model.set("vocab", vocab);
        model.set("merges", mergeArr);
        return root;
    }

    private static boolean mergeable(Llama2cTokenizer tok, int id) { return id > Llama2cTokenizer.EOS && !tok.isByteToken(id); }

    /** tokenizer_config.json for the converted tokenizer. */
    public static ObjectNode tokenizerConfig() {
        ObjectNode c = F.objectNode();
        c.put("add_bos_token", true);
        c.put("add_eos_token", false);
        c.put("bos_token", "<s>");
        c.put("eos_token", "</s>");
        c.put("unk_token", "<unk>");
        c.putNull("pad_token");
        c.put("clean_up_tokenization_spaces", false);
        c.put("legacy", false);
        c.put("tokenizer_class", "LlamaTokenizerFast");
        return c;
    }

    static ObjectNode specialTokensMap() {
        ObjectNode c = F.objectNode();
        c.put("bos_token", "<s>");
        c.put("eos_token", "</s>");
        c.put("unk_token", "<unk>");
        return c;
    }
}
