package dev.bdserve.model.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes Hugging Face {@code config.json} for Llama-family decoders: {@code llama}, {@code qwen2} (Qwen2,
 * Qwen2.5: q/k/v biases), {@code qwen3} (dense Qwen3: q/k norms, head_dim from the config) and {@code mistral}
 * (sliding window), each read into a {@link LlamaConfig} whose {@link DecoderVariant} names the departures.
 *
 * <p>Required keys: vocab_size, hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads. Optional keys take HF {@code LlamaConfig}'s defaults: num_key_value_heads =
 * num_attention_heads, head_dim = hidden_size / num_attention_heads, max_position_embeddings 2048,
 * rms_norm_eps 1e-6, rope_theta 10000, tie_word_embeddings false, bos_token_id 1, eos_token_id 2.
 * The model must be identified by model_type or architectures (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
 * MistralForCausalLM). Settings that would change the inference math and are not implemented (biases other than
 * Qwen2's, an activation other than silu, rope_scaling other than llama3/default, sliding windows on some layers only,
 * mixture-of-experts and vision models) are rejected.
 */
public final class HfConfigIO {
    private HfConfigIO() {}

    /** The decoder families read, by model_type, with their HF architecture class. */
    static final Map<String, String> FAMILIES = new LinkedHashMap<>();
    static {
        FAMILIES.put("llama", "LlamaForCausalLM");
        FAMILIES.put("qwen2", "Qwen2ForCausalLM");
        FAMILIES.put("qwen3", "Qwen3ForCausalLM");
        FAMILIES.put("mistral", "MistralForCausalLM");
        FAMILIES.put("gemma2", "Gemma2ForCausalLM");
        FAMILIES.put("gemma3_text", "Gemma3ForCausalLM");
        FAMILIES.put("phi3", "Phi3ForCausalLM");
    }

    /** config.json's model_type of a variant family (Gemma 3's text model is {@code gemma3_text}). */
    static String modelType(String family) { return family.equals("gemma3") ? "gemma3_text" : family; }

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    /** Reads a config.json file. */
    public static LlamaConfig read(Path configJson) {
        String text;
        try {
            text = Files.readString(configJson, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(configJson + ": file not found", e);
        } catch (IOException e) {
            throw new ModelFormatException(configJson + ": cannot read: " + e.getMessage(), e);
        }
        return parse(text, configJson.toString());
    }

    /** Parses config.json text; {@code file} names the source in error messages. */
    public static LlamaConfig parse(String json, String file) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file + ": not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new ModelFormatException(file + ": not a JSON object");
        return new HfConfigParser(root, file).config();
    }

    /**
     * The config.json content HF transformers would accept for this config, with the model_type and architecture of its
     * family (qwen2/qwen3 windows as use_sliding_window with max_window_layers 0, Mistral's as sliding_window).
     */
    public static Map<String, Object> toMap(LlamaConfig c) {
        DecoderVariant v = c.variant();
        String family = v.family();
        String type = modelType(family);
        if (!FAMILIES.containsKey(type)) throw new IllegalArgumentException("no config.json for model family " + family);
        boolean gemma = family.startsWith("gemma");
        DecoderVariant expected = switch (family) {
            case "qwen2" -> DecoderVariant.qwen2(v.slidingWindow());
            case "qwen3" -> DecoderVariant.qwen3(v.slidingWindow());
            case "mistral" -> DecoderVariant.mistral(v.slidingWindow());
            case "phi3" -> DecoderVariant.phi3(v.slidingWindow());
            case "gemma2" -> DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, v.slidingWindow(), v.attnSoftcap(), v.finalSoftcap(),
                    v.queryPreAttnScalar());
            case "gemma3" -> new DecoderVariant("gemma3", false, true, DecoderVariant.Norm.ONE_PLUS_WEIGHT, DecoderVariant.Activation.GELU_TANH,
                    false, false, v.slidingWindow(), v.slidingPattern(), true, true, v.attnSoftcap(), v.finalSoftcap(), v.queryPreAttnScalar(),
                    v.localRopeTheta());
            default -> DecoderVariant.LLAMA;
        };
        if (!v.equals(expected) || (gemma && (v.slidingWindow() <= 0 || v.queryPreAttnScalar() <= 0)))
            throw new IllegalArgumentException("the " + family + " config.json cannot express the variant " + v.departures());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of(FAMILIES.get(type)));
        if (!family.equals("qwen2")) m.put("attention_bias", false);
        if (gemma) {
            m.put("attn_logit_softcapping", v.attnSoftcap() > 0 ? (Object) Double.parseDouble(Float.toString(v.attnSoftcap())) : null);
            m.put("final_logit_softcapping", v.finalSoftcap() > 0 ? (Object) Double.parseDouble(Float.toString(v.finalSoftcap())) : null);
            m.put("hidden_activation", "gelu_pytorch_tanh");
            m.put("query_pre_attn_scalar", Double.parseDouble(Float.toString(v.queryPreAttnScalar())));
            if (family.equals("gemma3")) {
                m.put("rope_local_base_freq", v.localRopeTheta());
                m.put("sliding_window_pattern", v.slidingPattern());
            }
        }
        m.put("attention_dropout", 0.0);
        m.put("bos_token_id", c.bosTokenId() < 0 ? null : c.bosTokenId());
        m.put("eos_token_id", eosJson(c));
        m.put("head_dim", c.headDim());
        m.put("hidden_act", gemma ? "gelu_pytorch_tanh" : "silu");
        m.put("hidden_size", c.hiddenSize());
        m.put("initializer_range", 0.02);
        m.put("intermediate_size", c.intermediateSize());
        m.put("max_position_embeddings", c.maxPositions());
        if (family.equals("qwen2") || family.equals("qwen3")) m.put("max_window_layers", v.slidingWindow() > 0 ? 0 : c.numLayers());
        if (family.equals("llama")) m.put("mlp_bias", false);
        m.put("model_type", type);
        m.put("num_attention_heads", c.numHeads());
        m.put("num_hidden_layers", c.numLayers());
        m.put("num_key_value_heads", c.numKvHeads());
        m.put("pretraining_tp", 1);
        // the float's shortest decimal (1e-5f as 1.0E-5, not 9.99999974737875E-6)
        m.put("rms_norm_eps", Double.parseDouble(Float.toString(c.rmsNormEps())));
        switch (c.ropeScaling()) {
            case null -> m.put("rope_scaling", null);
            case LlamaConfig.RopeScaling.LongRope lr -> {
                Map<String, Object> r = new LinkedHashMap<>();
                if (lr.attentionFactor() != LlamaConfig.RopeScaling.LongRope.defaultAttentionFactor(c.maxPositions(), lr.originalMaxPositions()))
                    r.put("attention_factor", lr.attentionFactor());
                r.put("long_factor", floats(lr.longFactors()));
                r.put("short_factor", floats(lr.shortFactors()));
                r.put("type", "longrope");
                m.put("original_max_position_embeddings", lr.originalMaxPositions());
                m.put("rope_scaling", r);
            }
            case LlamaConfig.RopeScaling.Factors f -> throw new IllegalArgumentException("rope frequency factors that match no llama3 "
                    + "rope_scaling cannot be written to config.json: " + f);
            case LlamaConfig.RopeScaling.Llama3 rs -> {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("factor", rs.factor());
                r.put("high_freq_factor", rs.highFreqFactor());
                r.put("low_freq_factor", rs.lowFreqFactor());
                r.put("original_max_position_embeddings", rs.originalMaxPositions());
                r.put("rope_type", "llama3");
                m.put("rope_scaling", r);
            }
        }
        m.put("rope_theta", c.ropeTheta());
        if (!family.equals("llama")) m.put("sliding_window", v.slidingWindow() > 0 ? v.slidingWindow() : null);
        m.put("tie_word_embeddings", c.tieWordEmbeddings());
        m.put("torch_dtype", c.torchDtype());
        m.put("use_cache", true);
        if (family.equals("qwen2") || family.equals("qwen3")) m.put("use_sliding_window", v.slidingWindow() > 0);
        m.put("vocab_size", c.vocabSize());
        return m;
    }

    /** Each float as its shortest decimal. */
    private static List<Double> floats(float[] f) {
        List<Double> l = new ArrayList<>(f.length);
        for (float x : f) l.add(Double.parseDouble(Float.toString(x)));
        return l;
    }

    /** config.json text (pretty-printed). */
    public static String toJson(LlamaConfig c) { return toJson(toMap(c)); }

    static String toJson(Map<String, Object> m) {
        try {
            return JSON.writeValueAsString(m) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Writes config.json. */
    public static void write(LlamaConfig c, Path configJson) {
        writeText(configJson, toJson(c));
    }

    /** generation_config.json content: bos/eos token ids. */
    public static String generationConfigJson(LlamaConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("_from_model_config", true);
        if (c.bosTokenId() >= 0) m.put("bos_token_id", c.bosTokenId());
        m.put("eos_token_id", eosJson(c));
        return toJson(m);
    }

    private static Object eosJson(LlamaConfig c) {
        List<Integer> e = c.eosTokenIds();
        return e.isEmpty() ? null : e.size() == 1 ? e.getFirst() : e;
    }

    static void writeText(Path p, String text) {
        try {
            Files.writeString(p, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + p + ": " + e.getMessage(), e);
        }
    }
}
