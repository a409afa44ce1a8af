package dev.bdserve.model;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Hugging Face tensor names of a Llama decoder and their shapes in HF layout
 * ([out_features, in_features] for projections, [hidden] for norms).
 */
public final class LlamaTensorNames {
    private LlamaTensorNames() {}

    public static final String EMBED = "model.embed_tokens.weight";
    public static final String FINAL_NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";

    public static String layer(int i, String suffix) { return "model.layers." + i + "." + suffix; }
    public static String inputNorm(int i) { return layer(i, "input_layernorm.weight"); }
    public static String postAttentionNorm(int i) { return layer(i, "post_attention_layernorm.weight"); }
    public static String q(int i) { return layer(i, "self_attn.q_proj.weight"); }
    public static String k(int i) { return layer(i, "self_attn.k_proj.weight"); }
    public static String v(int i) { return layer(i, "self_attn.v_proj.weight"); }
    public static String o(int i) { return layer(i, "self_attn.o_proj.weight"); }
    public static String gate(int i) { return layer(i, "mlp.gate_proj.weight"); }
    public static String up(int i) { return layer(i, "mlp.up_proj.weight"); }
    public static String down(int i) { return layer(i, "mlp.down_proj.weight"); }
    /** Qwen2's q/k/v biases (HF modeling_qwen2.Qwen2Attention: q_proj/k_proj/v_proj with bias=True). */
    public static String qBias(int i) { return layer(i, "self_attn.q_proj.bias"); }
    public static String kBias(int i) { return layer(i, "self_attn.k_proj.bias"); }
    public static String vBias(int i) { return layer(i, "self_attn.v_proj.bias"); }
    /** Qwen3's per-head RMSNorm weights of q and k (HF modeling_qwen3.Qwen3Attention.q_norm / k_norm). */
    public static String qNorm(int i) { return layer(i, "self_attn.q_norm.weight"); }
    public static String kNorm(int i) { return layer(i, "self_attn.k_norm.weight"); }
    /** Phi-3's fused projections (HF modeling_phi3: qkv_proj rows [q; k; v], gate_up_proj rows [gate; up]). */
    public static String qkv(int i) { return layer(i, "self_attn.qkv_proj.weight"); }
    public static String gateUp(int i) { return layer(i, "mlp.gate_up_proj.weight"); }

    /** Gemma's norms around the MLP (HF modeling_gemma2: its post_attention_layernorm normalises the attention output). */
    public static String preFeedforwardNorm(int i) { return layer(i, "pre_feedforward_layernorm.weight"); }
    public static String postFeedforwardNorm(int i) { return layer(i, "post_feedforward_layernorm.weight"); }

    /**
     * The norm in front of layer i's MLP: {@code post_attention_layernorm} in Llama's naming, {@code
     * pre_feedforward_layernorm} in Gemma's (whose {@code post_attention_layernorm} follows the attention instead).
     */
    public static String mlpNorm(LlamaConfig c, int i) { return c.variant().sandwichNorm() ? preFeedforwardNorm(i) : postAttentionNorm(i); }

    /**
     * Every tensor the model needs, in the order HF writes them (embedding, layers, final norm, LM head),
     * with its expected shape. {@code lm_head.weight} is included only when the embeddings are untied; the q/k/v
     * biases ([qDim], [kvDim], [kvDim]), the q/k norm weights ([headDim] each) and Gemma's two MLP norms only for variants
     * that have them; Phi-3's fused qkv_proj [qDim + 2·kvDim, hidden] and gate_up_proj [2·ffn, hidden] in place of the parts.
     */
    public static Map<String, long[]> expectedShapes(LlamaConfig c) {
        long h = c.hiddenSize(), q = c.qDim(), kv = c.kvDim(), f = c.intermediateSize(), vocab = c.vocabSize();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(EMBED, new long[]{vocab, h});
        for (int i = 0; i < c.numLayers(); i++) {
            m.put(inputNorm(i), new long[]{h});
            if (c.variant().fusedQkv()) m.put(qkv(i), new long[]{q + 2 * kv, h});
            else {
                m.put(q(i), new long[]{q, h});
                if (c.variant().qkvBias()) m.put(qBias(i), new long[]{q});
                m.put(k(i), new long[]{kv, h});
                if (c.variant().qkvBias()) m.put(kBias(i), new long[]{kv});
                m.put(v(i), new long[]{kv, h});
                if (c.variant().qkvBias()) m.put(vBias(i), new long[]{kv});
            }
            m.put(o(i), new long[]{h, q});
            if (c.variant().qkNorm()) {
                m.put(qNorm(i), new long[]{c.headDim()});
                m.put(kNorm(i), new long[]{c.headDim()});
            }
            m.put(postAttentionNorm(i), new long[]{h});
            if (c.variant().sandwichNorm()) {
                m.put(preFeedforwardNorm(i), new long[]{h});
                m.put(postFeedforwardNorm(i), new long[]{h});
            }
            if (c.variant().fusedGateUp()) m.put(gateUp(i), new long[]{2 * f, h});
            else {
                m.put(gate(i), new long[]{f, h});
                m.put(up(i), new long[]{f, h});
            }
            m.put(down(i), new long[]{h, f});
        }
        m.put(FINAL_NORM, new long[]{h});
        if (!c.tieWordEmbeddings()) m.put(LM_HEAD, new long[]{vocab, h});
        return Collections.unmodifiableMap(m);
    }
}
