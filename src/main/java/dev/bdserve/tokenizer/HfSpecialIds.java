package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.model.ModelFormatException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The special ids of a Hugging Face tokenizer ({@link HfTokenizer}): BOS, the ids that end generation, the EOS
 * tokenizer_config.json names (else the first of them), and the ids {@code encode(text, true)} puts before and after
 * the text. They come from {@code tokenizer_config.json}, {@code generation_config.json} and {@code config.json} next to
 * the tokenizer.json when present, from its {@code TemplateProcessing} post-processor, else from well-known special
 * tokens.
 */
record HfSpecialIds(int bos, int[] eosIds, int eosId, int[] prefix, int[] suffix) {
    /**
     * Reads them for tokenizer.json {@code file}, parsed as {@code root}, whose pieces and added tokens have the ids
     * {@code ids} in a vocabulary of {@code size}; an id outside the vocabulary is refused.
     */
    static HfSpecialIds read(Path file, JsonNode root, Map<String, Integer> ids, int size) {
        Path dir = file.toAbsolutePath().getParent();
        JsonNode tokCfg = HfTokenizer.readJson(dir.resolve("tokenizer_config.json"), false);
        JsonNode genCfg = HfTokenizer.readJson(dir.resolve("generation_config.json"), false);
        JsonNode cfg = HfTokenizer.readJson(dir.resolve("config.json"), false);
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
        eos.removeIf(x -> x < 0 || x >= size);
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
        return new HfSpecialIds(bos, eos.stream().mapToInt(Integer::intValue).toArray(),
                firstEos >= 0 && firstEos < size ? firstEos : -1, prefix, suffix);
    }

    /**
     * The ids a TemplateProcessing post-processor puts before and after a single sequence: {prefix, suffix} (both
     * empty without one).
     */
    private static int[][] templateSpecials(JsonNode post, Map<String, Integer> ids) {
        for (JsonNode p : HfTokenizer.flatten(post, "processors")) {
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
}
