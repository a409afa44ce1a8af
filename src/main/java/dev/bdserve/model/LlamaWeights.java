package dev.bdserve.model;

import dev.bdserve.tensor.Weight;

/**
 * One rank's weights of a Llama decoder, in HF layout ([out_features, in_features]), with q/k/v and
 * gate/up fused along the output dimension so that each shares one pass over its input.
 * Mirrors HF {@code modeling_llama.LlamaForCausalLM}; the sharding follows spec §1.
 *
 * @param embed     model.embed_tokens.weight [vocab, hidden] (replicated on every rank)
 * @param layers    decoder layers
 * @param finalNorm model.norm.weight [hidden], as the gain of x̂ (see {@link Layer})
 * @param lmHead    lm_head.weight rows of this rank: [localVocab, hidden] (the embedding itself when tied and N = 1)
 * @param shard     which slice this is
 */
public record LlamaWeights(Weight embed, Layer[] layers, float[] finalNorm, Weight lmHead, Shard shard) {

    /**
     * One decoder layer's weights on one rank.
     *
     * @param attnNorm input_layernorm.weight [hidden]
     * @param wqkv     [q_proj rows of local heads; k_proj rows of local KV heads; v_proj rows of local KV heads]:
     *                 [(localHeads + 2·localKvHeads)·headDim, hidden] (column-parallel)
     * @param wo       o_proj columns of local heads: [hidden, localHeads·headDim] (row-parallel)
     * @param ffnNorm  post_attention_layernorm.weight [hidden]
     * @param wGateUp  [gate_proj rows; up_proj rows] of the local FFN slice: [2·localFfn, hidden] (column-parallel)
     * @param wDown    down_proj columns of the local FFN slice: [hidden, localFfn] (row-parallel)
     * @param bqkv     [q_proj.bias of local heads; k_proj.bias of local KV heads; v_proj.bias of local KV heads]:
     *                 [(localHeads + 2·localKvHeads)·headDim], sharded with the rows of {@code wqkv} (HF modeling_qwen2
     *                 Qwen2Attention's q/k/v bias=True); null when the variant has no bias
     * @param qNorm    self_attn.q_norm.weight [headDim], the RMSNorm over each query head (HF modeling_qwen3); null if none
     * @param kNorm    self_attn.k_norm.weight [headDim], the RMSNorm over each key head (HF modeling_qwen3); null if none
     * @param attnPostNorm post_attention_layernorm.weight of Gemma [hidden], over the attention output before the
     *                 residual add (HF modeling_gemma2); null if none
     * @param ffnPostNorm  post_feedforward_layernorm.weight of Gemma [hidden], over the MLP output; null if none
     *
     * <p>Every norm vector here is the gain x̂ is multiplied by: for checkpoints whose norms scale by (1 + w) (HF
     * Gemma) the 1 is added at load.
     */
    public record Layer(float[] attnNorm, Weight wqkv, Weight wo, float[] ffnNorm, Weight wGateUp, Weight wDown,
                        float[] bqkv, float[] qNorm, float[] kNorm, float[] attnPostNorm, float[] ffnPostNorm) {
        /** A Llama layer: no bias, no q/k norm. */
        public Layer(float[] attnNorm, Weight wqkv, Weight wo, float[] ffnNorm, Weight wGateUp, Weight wDown) {
            this(attnNorm, wqkv, wo, ffnNorm, wGateUp, wDown, null, null, null, null, null);
        }
    }

    /** Bytes of weights one decode step streams on this rank (embedding row reads excluded). */
    public long streamedBytes() {
        long b = lmHead.bytes();
        for (Layer l : layers) b += l.wqkv.bytes() + l.wo.bytes() + l.wGateUp.bytes() + l.wDown.bytes();
        return b;
    }

    /**
     * Bytes of this rank's matrices by storage format ("q4_k", "bf16", "q4_k+q6_k" for a fused projection whose
     * parts differ), the embedding included: which kernels a run exercises.
     */
    public java.util.SortedMap<String, Long> bytesByFormat() {
        java.util.SortedMap<String, Long> m = new java.util.TreeMap<>();
        java.util.function.Consumer<Weight> add = w -> m.merge(w.format(), w.bytes(), Long::sum);
        add.accept(embed);
        if (lmHead != embed && !lmHead.sameStorage(embed)) add.accept(lmHead);
        for (Layer l : layers) {
            add.accept(l.wqkv);
            add.accept(l.wo);
            add.accept(l.wGateUp);
            add.accept(l.wDown);
        }
        return m;
    }

    /**
     * These weights with every matrix product's weight (q/k/v, o, gate/up, down, LM head) replaced by {@code f} of it:
     * the same values behind other kernels. The embedding keeps its own weight for row lookups.
     */
    public LlamaWeights withProducts(java.util.function.UnaryOperator<Weight> f) {
        Layer[] ls = new Layer[layers.length];
        for (int i = 0; i < ls.length; i++) {
            Layer l = layers[i];
            ls[i] = new Layer(l.attnNorm, f.apply(l.wqkv), f.apply(l.wo), l.ffnNorm, f.apply(l.wGateUp), f.apply(l.wDown),
                    l.bqkv, l.qNorm, l.kNorm, l.attnPostNorm, l.ffnPostNorm);
        }
        return new LlamaWeights(embed, ls, finalNorm, f.apply(lmHead), shard);
    }

    /** Multiply-adds per token of the matrices one decode step streams on this rank. */
    public long streamedParameters() {
        long p = lmHead.parameters();
        for (Layer l : layers) p += l.wqkv.parameters() + l.wo.parameters() + l.wGateUp.parameters() + l.wDown.parameters();
        return p;
    }

    /** A 1-D tensor of the expected length, or a {@link ModelFormatException} naming it. */
    private static float[] biasVector(TensorSource src, String name, int n) {
        float[] v = src.vector(name);
        if (v.length != n) throw new ModelFormatException(src.describe() + ": tensor " + name + " has " + v.length + " values, expected " + n);
        return v;
    }

    /** A norm's stored weights as the gain of x̂: 1 + w where the variant scales by (1 + w) (HF GemmaRMSNorm, in fp32). */
    static float[] gain(LlamaConfig c, float[] w) {
        if (c.variant().norm() == DecoderVariant.Norm.WEIGHT) return w;
        float[] g = new float[w.length];
        for (int i = 0; i < w.length; i++) g[i] = 1f + w[i];
        return g;
    }

    /** Loads this rank's slices from a checkpoint. Only the rows/columns the rank needs are copied. */
    public static LlamaWeights load(TensorSource src, Shard shard) {
        LlamaConfig c = src.config();
        String why = shard.incompatibility(c);
        if (why != null) throw new IllegalArgumentException(src.describe() + ": " + why);
        int hidden = c.hiddenSize(), hd = c.headDim();
        int q0 = shard.firstHead(c) * hd, q1 = q0 + shard.localHeads(c) * hd;
        int kv0 = shard.firstKvHead(c) * hd, kv1 = kv0 + shard.localKvHeads(c) * hd;
        int f0 = shard.rank() * shard.localFfn(c), f1 = f0 + shard.localFfn(c);

        for (int i = 0; i < c.numLayers(); i++) {               // refuse a split that cuts quantized blocks before loading
            src.requireColumnSlice("model.layers." + i + ".self_attn.o_proj.weight", q0, q1);
            src.requireColumnSlice("model.layers." + i + ".mlp.down_proj.weight", f0, f1);
        }
        Weight embed = src.weight("model.embed_tokens.weight");
        Layer[] layers = new Layer[c.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            Weight q, k, v, g, u;
            if (c.variant().fusedQkv()) {                                 // Phi-3: this rank's rows of each part of qkv_proj
                String qkv = LlamaTensorNames.qkv(i);
                int qd = c.qDim(), kvd = c.kvDim();
                q = src.weight(qkv, q0, q1, 0, hidden);
                k = src.weight(qkv, qd + kv0, qd + kv1, 0, hidden);
                v = src.weight(qkv, qd + kvd + kv0, qd + kvd + kv1, 0, hidden);
            } else {
                q = src.weight(p + "self_attn.q_proj.weight", q0, q1, 0, hidden);
                k = src.weight(p + "self_attn.k_proj.weight", kv0, kv1, 0, hidden);
                v = src.weight(p + "self_attn.v_proj.weight", kv0, kv1, 0, hidden);
            }
            Weight o = src.weight(p + "self_attn.o_proj.weight", 0, hidden, q0, q1);
            if (c.variant().fusedGateUp()) {                              // gate_up_proj rows [gate; up]
                String gu = LlamaTensorNames.gateUp(i);
                g = src.weight(gu, f0, f1, 0, hidden);
                u = src.weight(gu, c.intermediateSize() + f0, c.intermediateSize() + f1, 0, hidden);
            } else {
                g = src.weight(p + "mlp.gate_proj.weight", f0, f1, 0, hidden);
                u = src.weight(p + "mlp.up_proj.weight", f0, f1, 0, hidden);
            }
            Weight d = src.weight(p + "mlp.down_proj.weight", 0, hidden, f0, f1);
            float[] bqkv = null, qNorm = null, kNorm = null;
            if (c.variant().qkvBias()) {                                  // [qDim], [kvDim], [kvDim] -> this rank's rows
                bqkv = new float[(q1 - q0) + 2 * (kv1 - kv0)];
                System.arraycopy(biasVector(src, LlamaTensorNames.qBias(i), c.qDim()), q0, bqkv, 0, q1 - q0);
                System.arraycopy(biasVector(src, LlamaTensorNames.kBias(i), c.kvDim()), kv0, bqkv, q1 - q0, kv1 - kv0);
                System.arraycopy(biasVector(src, LlamaTensorNames.vBias(i), c.kvDim()), kv0, bqkv, q1 - q0 + kv1 - kv0, kv1 - kv0);
            }
            if (c.variant().qkNorm()) {                                   // [headDim] each, replicated
                qNorm = gain(c, biasVector(src, LlamaTensorNames.qNorm(i), hd));
                kNorm = gain(c, biasVector(src, LlamaTensorNames.kNorm(i), hd));
            }
            float[] attnPost = null, ffnPost = null;
            if (c.variant().sandwichNorm()) {                             // Gemma: norms after attention and MLP
                attnPost = gain(c, biasVector(src, LlamaTensorNames.postAttentionNorm(i), hidden));
                ffnPost = gain(c, biasVector(src, LlamaTensorNames.postFeedforwardNorm(i), hidden));
            }
            layers[i] = new Layer(gain(c, biasVector(src, LlamaTensorNames.inputNorm(i), hidden)), Weight.concatRows(q, k, v), o,
                    gain(c, biasVector(src, LlamaTensorNames.mlpNorm(c, i), hidden)), Weight.concatRows(g, u), d, bqkv, qNorm, kNorm,
                    attnPost, ffnPost);
        }
        float[] norm = gain(c, biasVector(src, LlamaTensorNames.FINAL_NORM, hidden));
        int v0 = shard.firstVocab(c), v1 = v0 + shard.localVocab(c);
        Weight head;
        if (c.tieWordEmbeddings()) head = (v0 == 0 && v1 == c.vocabSize()) ? embed : embed.sliceRows(v0, v1);
        else head = src.weight("lm_head.weight", v0, v1, 0, hidden);
        return new LlamaWeights(embed, layers, norm, head, shard);
    }
}
