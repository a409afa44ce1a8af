package dev.bdserve.model.io;

import static dev.bdserve.model.io.HfConfigIO.FAMILIES;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Turns the JSON tree of one config.json into a {@link LlamaConfig}, checking each key as it reads it: the family
 * (from model_type or architectures), the shape, the rope scaling (llama3, Phi-3's LongRoPE) and each family's
 * variant (Qwen2/Qwen3/Mistral/Phi-3 sliding windows, Gemma's window pattern and soft-caps). {@link HfConfigIO}
 * documents the keys and their defaults; it reads the file and the JSON, this class what they say. Each refusal is a
 * {@link ModelFormatException} naming the file.
 *
 * @param root the config.json object
 * @param file the source, for error messages
 */
record HfConfigParser(JsonNode root, String file) {
    ModelFormatException bad(String msg) { return new ModelFormatException(file + ": " + msg); }

    boolean present(String key) {
        JsonNode n = root.get(key);
        return n != null && !n.isNull();
    }

    int requiredInt(String key) {
        if (!present(key)) throw bad("missing required key \"" + key + "\"");
        return intValue(key, root.get(key));
    }

    int optInt(String key, int dflt) { return present(key) ? intValue(key, root.get(key)) : dflt; }

    int intValue(String key, JsonNode n) {
        if (!n.isIntegralNumber() || !n.canConvertToInt())
            throw bad("\"" + key + "\" must be an integer, got " + n);
        return n.intValue();
    }

    double optDouble(JsonNode obj, String key, double dflt) {
        JsonNode n = obj.get(key);
        if (n == null || n.isNull()) return dflt;
        if (!n.isNumber()) throw bad("\"" + key + "\" must be a number, got " + n);
        return n.doubleValue();
    }

    double requiredDouble(JsonNode obj, String key, String where) {
        JsonNode n = obj.get(key);
        if (n == null || n.isNull()) throw bad(where + " is missing \"" + key + "\"");
        if (!n.isNumber()) throw bad(where + " \"" + key + "\" must be a number, got " + n);
        return n.doubleValue();
    }

    boolean optBool(String key, boolean dflt) {
        if (!present(key)) return dflt;
        JsonNode n = root.get(key);
        if (!n.isBoolean()) throw bad("\"" + key + "\" must be true or false, got " + n);
        return n.booleanValue();
    }

    String optString(String key) {
        if (!present(key)) return null;
        JsonNode n = root.get(key);
        if (!n.isTextual()) throw bad("\"" + key + "\" must be a string, got " + n);
        return n.textValue();
    }

    LlamaConfig config() {
        String family = family();
        boolean gemma = family.startsWith("gemma");
        String act = optString(gemma && present("hidden_activation") ? "hidden_activation" : "hidden_act");
        String wantAct = gemma ? "gelu_pytorch_tanh" : "silu";
        if (act != null && !act.equals(wantAct))
            throw bad("\"" + (gemma && present("hidden_activation") ? "hidden_activation" : "hidden_act") + "\" is \"" + act + "\"; only \""
                    + wantAct + "\" is supported for " + family);
        // HF modeling_qwen2 always has q/k/v biases (no config key); modeling_llama / modeling_qwen3 add them (and an
        // o_proj bias) only under attention_bias, which is refused; modeling_mistral has none.
        if (!family.equals("qwen2") && optBool("attention_bias", false))
            throw bad("\"attention_bias\": true is not supported (" + family + " projections without biases only)");
        if (optBool("mlp_bias", false)) throw bad("\"mlp_bias\": true is not supported (MLP projections have no biases here)");

        int vocab = requiredInt("vocab_size");
        int hidden = requiredInt("hidden_size");
        int ffn = requiredInt("intermediate_size");
        int layers = requiredInt("num_hidden_layers");
        int heads = requiredInt("num_attention_heads");
        if (heads <= 0) throw bad("\"num_attention_heads\" must be positive, got " + heads);
        int kvHeads = optInt("num_key_value_heads", heads);
        int headDim;
        if (present("head_dim")) headDim = requiredInt("head_dim");
        else if (family.equals("qwen3")) headDim = 128;                 // Qwen3Config's default head_dim
        else if (gemma) headDim = 256;                                  // Gemma2Config / Gemma3TextConfig default
        else {
            if (hidden % heads != 0)
                throw bad("\"head_dim\" is absent and hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
            headDim = hidden / heads;
        }
        if (present("partial_rotary_factor") && optDouble(root, "partial_rotary_factor", 1.0) != 1.0)
            throw bad("\"partial_rotary_factor\" " + optDouble(root, "partial_rotary_factor", 1.0) + " is not supported (rotary embeddings over the whole head only)");
        int maxPos = optInt("max_position_embeddings", 2048);
        double eps = optDouble(root, "rms_norm_eps", 1e-6);

        // rope: transformers <= 4.x writes rope_theta + rope_scaling; 5.x writes rope_parameters.
        JsonNode ropeParams = root.get("rope_parameters");
        double theta;
        LlamaConfig.RopeScaling scaling;
        if (ropeParams != null && !ropeParams.isNull()) {
            if (!ropeParams.isObject()) throw bad("\"rope_parameters\" must be an object, got " + ropeParams);
            theta = optDouble(ropeParams, "rope_theta", optDouble(root, "rope_theta", 10000.0));
            scaling = ropeScaling(ropeParams, "rope_parameters");
        } else {
            theta = optDouble(root, "rope_theta", 10000.0);
            JsonNode rs = root.get("rope_scaling");
            if (rs == null || rs.isNull()) scaling = null;
            else if (!rs.isObject()) throw bad("\"rope_scaling\" must be an object or null, got " + rs);
            else scaling = ropeScaling(rs, "rope_scaling");
        }

        boolean tied = optBool("tie_word_embeddings", gemma);           // Gemma configs tie by default
        int bos = present("bos_token_id") ? intValue("bos_token_id", root.get("bos_token_id")) : (root.has("bos_token_id") ? -1 : 1);
        List<Integer> eos = new ArrayList<>();
        JsonNode e = root.get("eos_token_id");
        if (e == null) eos.add(2);
        else if (e.isArray()) for (JsonNode x : e) eos.add(intValue("eos_token_id", x));
        else if (!e.isNull()) eos.add(intValue("eos_token_id", e));
        String dtype = optString("torch_dtype");
        if (dtype == null) dtype = optString("dtype");
        try {
            DecoderVariant variant = gemma ? gemmaVariant(family, layers) : switch (family) {
                case "qwen2" -> DecoderVariant.qwen2(slidingWindow(family, layers));
                case "qwen3" -> DecoderVariant.qwen3(slidingWindow(family, layers));
                case "mistral" -> DecoderVariant.mistral(slidingWindow(family, layers));
                case "phi3" -> DecoderVariant.phi3(slidingWindow(family, layers));
                default -> DecoderVariant.LLAMA;
            };
            return new LlamaConfig(vocab, hidden, ffn, layers, heads, kvHeads, headDim, maxPos, (float) eps, theta,
                    scaling, tied, bos, eos, dtype, variant);
        } catch (IllegalArgumentException ex) {
            throw new ModelFormatException(file + ": " + ex.getMessage(), ex);
        }
    }

    /**
     * The family: config.json's model_type when it is one of {@link HfConfigIO#FAMILIES}, else the one its
     * architectures name; mixture-of-experts, vision-language and unknown models are refused by name.
     */
    String family() {
        String modelType = optString("model_type");
        JsonNode arch = root.get("architectures");
        List<String> archs = new ArrayList<>();
        if (arch != null && !arch.isNull()) {
            if (!arch.isArray()) throw bad("\"architectures\" must be a list of strings, got " + arch);
            for (JsonNode a : arch) {
                if (!a.isTextual()) throw bad("\"architectures\" must be a list of strings, got " + arch);
                archs.add(a.textValue());
            }
        }
        if (modelType != null && FAMILIES.containsKey(modelType)) return modelType;
        for (Map.Entry<String, String> f : FAMILIES.entrySet()) if (archs.contains(f.getValue())) return f.getKey();
        if (archs.isEmpty() && modelType == null)
            throw bad("neither \"architectures\" nor \"model_type\" identifies the model (expected one of " + FAMILIES.values()
                    + " or model_type " + FAMILIES.keySet() + ")");
        String what = "architectures " + archs + ", model_type " + (modelType == null ? "absent" : "\"" + modelType + "\"");
        String all = (modelType == null ? "" : modelType) + " " + archs;
        if (all.matches("(?is).*(moe|mixtral|expert).*"))
            throw bad("mixture-of-experts models are not supported: " + what + " (dense " + FAMILIES.keySet() + " only)");
        if (all.matches("(?is).*(_vl|vision|llava|pixtral|mistral3|conditionalgeneration).*"))
            throw bad("vision-language models are not supported: " + what + " (text-only " + FAMILIES.keySet() + " only)");
        throw bad("unsupported model: " + what + " (expected one of " + FAMILIES.values() + " or model_type " + FAMILIES.keySet() + ")");
    }

    /**
     * The attention window of every layer, 0 for full attention. Mistral: sliding_window (null = full). Qwen2/Qwen3
     * (HF Qwen2Config.layer_types): a layer i slides only when use_sliding_window and i ≥ max_window_layers; one
     * window for all layers or none is run, a mix of sliding and full layers is refused. Llama has no window.
     */
    int slidingWindow(String family, int layers) {
        if (family.equals("llama")) return 0;
        int window = optInt("sliding_window", 0);
        if (window < 0) throw bad("\"sliding_window\" must be positive or null, got " + window);
        int sliding;                                                  // how many layers slide
        JsonNode types = root.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != layers)
                throw bad("\"layer_types\" must be a list of " + layers + " strings, got " + types);
            sliding = 0;
            for (JsonNode t : types) {
                if (!t.isTextual() || !(t.textValue().equals("full_attention") || t.textValue().equals("sliding_attention")))
                    throw bad("\"layer_types\" entry " + t + " is not \"full_attention\" or \"sliding_attention\"");
                if (t.textValue().equals("sliding_attention")) sliding++;
            }
        } else if (family.equals("mistral") || family.equals("phi3")) {
            sliding = window > 0 ? layers : 0;                        // MistralConfig, Phi3Config: sliding_window null = full attention
        } else {
            boolean use = optBool("use_sliding_window", false);
            int maxWindowLayers = optInt("max_window_layers", 28);     // Qwen2Config / Qwen3Config default
            sliding = use ? Math.max(0, layers - Math.max(0, maxWindowLayers)) : 0;
        }
        if (sliding == 0) return 0;
        if (window == 0) throw bad(sliding + " layers use sliding-window attention but \"sliding_window\" is absent or null");
        if (sliding != layers)
            throw bad("sliding-window attention on " + sliding + " of " + layers + " layers (use_sliding_window with max_window_layers "
                    + optInt("max_window_layers", 28) + ", or layer_types) is not supported: the window must cover all layers or none");
        return window;
    }

    /**
     * Gemma 2 (Gemma2Config: sliding_window 4096 on every other layer from the first, soft-caps 50 and 30,
     * query_pre_attn_scalar 256) and Gemma 3's text model (Gemma3TextConfig: sliding_window on five of every six
     * layers, or as sliding_window_pattern says; rope_local_base_freq 10000 for them; q/k norms; soft-caps only if
     * given). A layer_types list must match that pattern; norms scale by (1 + w).
     */
    DecoderVariant gemmaVariant(String family, int layers) {
        boolean g2 = family.equals("gemma2");
        int window = optInt("sliding_window", 4096);
        if (window <= 0) throw bad("\"sliding_window\" must be positive for " + family + ", got " + window);
        int pattern = g2 ? 2 : optInt("sliding_window_pattern", 6);
        if (pattern < 1) throw bad("\"sliding_window_pattern\" must be positive, got " + pattern);
        float attnCap = (float) optDouble(root, "attn_logit_softcapping", g2 ? 50.0 : 0.0);
        float finalCap = (float) optDouble(root, "final_logit_softcapping", g2 ? 30.0 : 0.0);
        float qpas = (float) optDouble(root, "query_pre_attn_scalar", 256);
        DecoderVariant v = g2 ? DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, window, attnCap, finalCap, qpas)
                : new DecoderVariant("gemma3", false, true, DecoderVariant.Norm.ONE_PLUS_WEIGHT, DecoderVariant.Activation.GELU_TANH,
                false, false, window, pattern, true, true, attnCap, finalCap, qpas, optDouble(root, "rope_local_base_freq", 10000.0));
        JsonNode types = root.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != layers) throw bad("\"layer_types\" must be a list of " + layers + " strings, got " + types);
            for (int i = 0; i < layers; i++) {
                String want = v.windowed(i) ? "sliding_attention" : "full_attention";
                if (!want.equals(types.get(i).asText()))
                    throw bad("\"layer_types\"[" + i + "] is " + types.get(i) + " but " + family + " with a pattern of " + pattern
                            + " has " + want + " there; other layer layouts are not supported");
            }
        }
        return v;
    }

    /**
     * Phi-3's LongRoPE (HF _compute_longrope_parameters): short and long factors, the pretrained context
     * original_max_position_embeddings (the config's, else rope_scaling's), attention_factor if given, else
     * √(1 + ln(max / original) / ln(original)).
     */
    LlamaConfig.RopeScaling longRope(JsonNode rs, String where) {
        float[] shortF = factors(rs, "short_factor", where), longF = factors(rs, "long_factor", where);
        int orig = present("original_max_position_embeddings") ? requiredInt("original_max_position_embeddings")
                : rs.hasNonNull("original_max_position_embeddings") ? intValue("original_max_position_embeddings", rs.get("original_max_position_embeddings"))
                : optInt("max_position_embeddings", 2048);
        int maxPos = optInt("max_position_embeddings", 2048);
        double attn = optDouble(rs, "attention_factor", LlamaConfig.RopeScaling.LongRope.defaultAttentionFactor(maxPos, orig));
        try {
            return new LlamaConfig.RopeScaling.LongRope(shortF, longF, orig, attn);
        } catch (IllegalArgumentException ex) {
            throw bad("\"" + where + "\": " + ex.getMessage());
        }
    }

    float[] factors(JsonNode rs, String key, String where) {
        JsonNode a = rs.get(key);
        if (a == null || !a.isArray()) throw bad("\"" + where + "\" (longrope) needs a list \"" + key + "\", got " + a);
        float[] f = new float[a.size()];
        for (int i = 0; i < f.length; i++) {
            if (!a.get(i).isNumber()) throw bad("\"" + where + "\" " + key + "[" + i + "] must be a number, got " + a.get(i));
            f[i] = (float) a.get(i).doubleValue();
        }
        return f;
    }

    LlamaConfig.RopeScaling ropeScaling(JsonNode rs, String where) {
        JsonNode t = rs.get("rope_type");
        if (t == null || t.isNull()) t = rs.get("type");
        if (t == null || t.isNull()) {
            if (where.equals("rope_parameters")) return null;
            throw bad("\"" + where + "\" has no \"rope_type\"");
        }
        if (!t.isTextual()) throw bad("\"" + where + "\" rope_type must be a string, got " + t);
        String type = t.textValue();
        if (type.equals("default")) return null;
        if (type.equals("longrope") || type.equals("su")) return longRope(rs, where);
        if (!type.equals("llama3"))
            throw bad("\"" + where + "\" rope_type \"" + type + "\" is not supported (only \"llama3\", \"longrope\" and \"default\")");
        String w = "\"" + where + "\" (llama3)";
        double factor = requiredDouble(rs, "factor", w);
        double low = requiredDouble(rs, "low_freq_factor", w);
        double high = requiredDouble(rs, "high_freq_factor", w);
        JsonNode orig = rs.get("original_max_position_embeddings");
        if (orig == null || orig.isNull()) throw bad(w + " is missing \"original_max_position_embeddings\"");
        int origMax = intValue("original_max_position_embeddings", orig);
        try {
            return new LlamaConfig.RopeScaling.Llama3(factor, low, high, origMax);
        } catch (IllegalArgumentException ex) {
            throw new ModelFormatException(file + ": " + ex.getMessage(), ex);
        }
    }
}
