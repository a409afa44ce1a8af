package dev.bdserve.lab.train;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.TensorSource;

/**
 * The frozen base weights in fp32, HF layout ([out_features, in_features]), unsharded: what training
 * backpropagates through. Loaded once from any {@link TensorSource} (llama2.c checkpoints arrive with q/k
 * already permuted to the rotate-half layout).
 *
 * @param config     the model's hyper-parameters
 * @param embed      model.embed_tokens.weight [vocab, d]
 * @param layers     decoder layers
 * @param finalNorm  model.norm.weight [d]
 * @param lmHead     lm_head.weight [vocab, d] (the embedding when tied)
 * @param invFreq    RoPE inverse frequencies [headDim/2] (HF _compute_default_rope_parameters / llama3)
 */
public record FrozenLlama(LlamaConfig config, float[] embed, Layer[] layers, float[] finalNorm, float[] lmHead, float[] invFreq) {

    /** One decoder layer's weights; matrices are [out, in] row-major. */
    public record Layer(float[] attnNorm, float[] wq, float[] wk, float[] wv, float[] wo,
                        float[] ffnNorm, float[] wGate, float[] wUp, float[] wDown) {}

    public static FrozenLlama load(TensorSource src) {
        LlamaConfig c = src.config();
        if (!c.variant().departures().isEmpty())
            throw new IllegalArgumentException("training backpropagates through Llama's decoder only; the " + c.variant().family()
                    + " model departs from it in " + String.join(", ", c.variant().departures()));
        Layer[] layers = new Layer[c.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            layers[i] = new Layer(src.vector(p + "input_layernorm.weight"),
                    src.matrix(p + "self_attn.q_proj.weight").toFloats(), src.matrix(p + "self_attn.k_proj.weight").toFloats(),
                    src.matrix(p + "self_attn.v_proj.weight").toFloats(), src.matrix(p + "self_attn.o_proj.weight").toFloats(),
                    src.vector(p + "post_attention_layernorm.weight"),
                    src.matrix(p + "mlp.gate_proj.weight").toFloats(), src.matrix(p + "mlp.up_proj.weight").toFloats(),
                    src.matrix(p + "mlp.down_proj.weight").toFloats());
        }
        float[] embed = src.matrix("model.embed_tokens.weight").toFloats();
        float[] head = c.tieWordEmbeddings() ? embed : src.matrix("lm_head.weight").toFloats();
        return new FrozenLlama(c, embed, layers, src.vector("model.norm.weight"), head, inverseFrequencies(c));
    }

    /** HF's RoPE inverse frequencies, default and "llama3": the engine's own ({@link dev.bdserve.model.Rope}). */
    static float[] inverseFrequencies(LlamaConfig c) { return dev.bdserve.model.Rope.inverseFrequencies(c); }
}
