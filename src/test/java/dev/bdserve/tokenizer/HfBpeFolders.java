package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufTestFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Hugging Face tokenizer folders with real byte-level BPE vocabularies: made from llama.cpp's vocabulary files
 * ({@code ggml-vocab-llama-bpe.gguf}: Llama 3's, {@code qwen2}, {@code gpt-2}) and laid out as those models' own
 * tokenizer.json, tokenizer_config.json and generation_config.json are: added tokens outside the model's vocabulary,
 * Llama 3 with merges as pairs, a Split + ByteLevel pre-tokenizer and a TemplateProcessing post-processor adding
 * BOS; Qwen2 with an NFC normalizer, no BOS token in tokenizer_config.json and its padding left out; GPT-2 with
 * the ByteLevel pre-tokenizer's own regex and named chat templates.
 */
final class HfBpeFolders {
    private HfBpeFolders() {}

    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    /** A Llama-3-like chat template (not Meta's: enough to see that it travels). */
    static final String LLAMA3_TEMPLATE = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
            + "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";
    static final String PLAIN_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            + "{% if add_generation_prompt %}assistant:{% endif %}";
    static final String TOOL_TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";

    /** The folder for {@code vocab} (llama-bpe, qwen2 or gpt-2) inside {@code dir}; the model's vocabulary size is the GGUF file's. */
    static Path make(String vocab, Path dir) throws IOException {
        Path gguf = GgufTestFiles.vocab(vocab);
        Path out = Files.createDirectories(dir.resolve(vocab));
        List<Object> tokens, types, merges;
        String pre, ggufTemplate;
        int n;
        try (GgufFile f = GgufFile.open(gguf)) {
            tokens = f.list("tokenizer.ggml.tokens");
            types = f.list("tokenizer.ggml.token_type");
            merges = f.list("tokenizer.ggml.merges");
            pre = f.string("tokenizer.ggml.pre");
            ggufTemplate = f.string("tokenizer.chat_template", null);
            n = tokens.size();
        }
        ObjectNode root = F.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        ObjectNode vocabNode = F.objectNode();
        for (int i = 0; i < n; i++) {
            String t = (String) tokens.get(i);
            long type = (Long) types.get(i);
            if (type == GgufTokenizers.USER_DEFINED && t.startsWith("[PAD")) continue;   // Qwen2's padding: not in its tokenizer
            if (type == GgufTokenizers.CONTROL || type == GgufTokenizers.USER_DEFINED)
                added.addObject().put("id", i).put("content", t).put("single_word", false).put("lstrip", false).put("rstrip", false)
                        .put("normalized", type != GgufTokenizers.CONTROL).put("special", type == GgufTokenizers.CONTROL);
            else vocabNode.put(t, i);
        }
        if (vocab.equals("qwen2")) root.putObject("normalizer").put("type", "NFC");
        else root.putNull("normalizer");
        if (vocab.equals("gpt-2")) {
            root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", true);
        } else {
            ArrayNode steps = root.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
            ObjectNode split = steps.addObject().put("type", "Split");
            split.putObject("pattern").put("Regex", GgufPreTokenizers.REGEXES.get(pre).getFirst());
            split.put("behavior", "Isolated").put("invert", false);
            steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", !vocab.equals("qwen2"))
                    .put("use_regex", false);
        }
        if (vocab.equals("llama-bpe")) {
            ArrayNode procs = root.putObject("post_processor").put("type", "Sequence").putArray("processors");
            procs.addObject().put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", false).put("use_regex", true);
            ObjectNode tp = procs.addObject().put("type", "TemplateProcessing");
            tp.putArray("single").add(special("<|begin_of_text|>", 0)).add(sequence("A", 0));
            tp.putArray("pair").add(special("<|begin_of_text|>", 0)).add(sequence("A", 0)).add(special("<|begin_of_text|>", 1)).add(sequence("B", 1));
            ObjectNode st = tp.putObject("special_tokens").putObject("<|begin_of_text|>").put("id", "<|begin_of_text|>");
            st.putArray("ids").add(128000);
            st.putArray("tokens").add("<|begin_of_text|>");
        } else {
            root.putObject("post_processor").put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", false).put("use_regex", false);
        }
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", true);
        ObjectNode model = root.putObject("model").put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        if (vocab.equals("qwen2")) model.put("continuing_subword_prefix", "").put("end_of_word_suffix", "");
        else model.putNull("continuing_subword_prefix").putNull("end_of_word_suffix");
        model.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", vocab.equals("llama-bpe"));
        model.set("vocab", vocabNode);
        ArrayNode m = model.putArray("merges");
        for (Object merge : merges) {
            String s = (String) merge;
            if (vocab.equals("llama-bpe")) m.addArray().add(s.substring(0, s.indexOf(' '))).add(s.substring(s.indexOf(' ') + 1));
            else m.add(s);
        }

        ObjectNode cfg = F.objectNode(), gen = F.objectNode();
        switch (vocab) {
            case "llama-bpe" -> {
                cfg.put("bos_token", "<|begin_of_text|>").put("eos_token", "<|end_of_text|>").put("chat_template", LLAMA3_TEMPLATE);
                gen.put("bos_token_id", 128000).put("eos_token_id", 128001);
            }
            case "qwen2" -> {
                cfg.putNull("bos_token").put("eos_token", "<|endoftext|>").put("add_prefix_space", false).put("chat_template", ggufTemplate);
                gen.put("bos_token_id", 151643).put("eos_token_id", 151643);
            }
            case "gpt-2" -> {
                cfg.put("bos_token", "<|endoftext|>").put("eos_token", "<|endoftext|>");
                ArrayNode list = cfg.putArray("chat_template");
                list.addObject().put("name", "tool_use").put("template", TOOL_TEMPLATE);
                list.addObject().put("name", "default").put("template", PLAIN_TEMPLATE);
            }
            default -> throw new IllegalArgumentException(vocab);
        }
        ObjectMapper json = new ObjectMapper();
        json.writeValue(out.resolve("tokenizer.json").toFile(), root);
        json.writeValue(out.resolve("tokenizer_config.json").toFile(), cfg);
        if (!gen.isEmpty()) json.writeValue(out.resolve("generation_config.json").toFile(), gen);
        return out;
    }

    private static ObjectNode special(String id, int typeId) {
        ObjectNode o = F.objectNode();
        o.putObject("SpecialToken").put("id", id).put("type_id", typeId);
        return o;
    }

    private static ObjectNode sequence(String id, int typeId) {
        ObjectNode o = F.objectNode();
        o.putObject("Sequence").put("id", id).put("type_id", typeId);
        return o;
    }
}
