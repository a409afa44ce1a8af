package dev.bdserve.model;

import java.util.List;

/**
 * Hyper-parameters of a Llama decoder, as in HF {@code LlamaConfig} (config.json). Validated on
 * construction.
 *
 * @param vocabSize        vocab_size
 * @param hiddenSize       hidden_size (d_model)
 * @param intermediateSize intermediate_size (d_ff)
 * @param numLayers        num_hidden_layers
 * @param numHeads         num_attention_heads
 * @param numKvHeads       num_key_value_heads (GQA when < numHeads)
 * @param headDim          head_dim (hidden_size / num_attention_heads unless given)
 * @param maxPositions     max_position_embeddings (the context limit)
 * @param rmsNormEps       rms_norm_eps
 * @param ropeTheta        rope_theta
 * @param ropeScaling      Llama-3 style rope_scaling, or null
 * @param tieWordEmbeddings tie_word_embeddings (LM head = embedding)
 * @param bosTokenId       bos_token_id (-1 if none)
 * @param eosTokenIds      eos_token_id (one or several)
 * @param torchDtype       torch_dtype as written ("float32", "bfloat16", "float16"), informational
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
                          int numKvHeads, int headDim, int maxPositions, float rmsNormEps, double ropeTheta,
                          RopeScaling ropeScaling, boolean tieWordEmbeddings, int bosTokenId,
                          List<Integer> eosTokenIds, String torchDtype) {

    /** HF rope_scaling with rope_type "llama3" (Llama 3.1 / 3.2). */
    public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        public RopeScaling {
            if (!(factor >= 1) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositions <= 0)
                throw new IllegalArgumentException("invalid llama3 rope_scaling: factor=" + factor + " low_freq_factor="
                        + lowFreqFactor + " high_freq_factor=" + highFreqFactor + " original_max_position_embeddings=" + originalMaxPositions);
        }
    }

    public LlamaConfig {
        require(vocabSize > 0, "vocab_size must be positive");
        require(hiddenSize > 0, "hidden_size must be positive");
        require(intermediateSize > 0, "intermediate_size must be positive");
        require(numLayers > 0, "num_hidden_layers must be positive");
        require(numHeads > 0, "num_attention_heads must be positive");
        require(numKvHeads > 0 && numHeads % numKvHeads == 0,
                "num_key_value_heads (" + numKvHeads + ") must divide num_attention_heads (" + numHeads + ")");
        require(headDim > 0 && headDim % 2 == 0, "head_dim must be positive and even, got " + headDim);
        require(maxPositions > 0, "max_position_embeddings must be positive");
        require(rmsNormEps > 0, "rms_norm_eps must be positive");
        require(ropeTheta > 0, "rope_theta must be positive");
        eosTokenIds = List.copyOf(eosTokenIds);
        for (int e : eosTokenIds) require(e >= 0 && e < vocabSize, "eos_token_id " + e + " outside the vocabulary");
        require(bosTokenId < vocabSize, "bos_token_id " + bosTokenId + " outside the vocabulary");
        if (torchDtype == null) torchDtype = "float32";
    }

    private static void require(boolean ok, String msg) {
        if (!ok) throw new IllegalArgumentException("invalid model config: " + msg);
    }

    /** Width of the query projection output: numHeads × headDim. */
    public int qDim() { return numHeads * headDim; }

    /** Width of the key (and value) projection output: numKvHeads × headDim. */
    public int kvDim() { return numKvHeads * headDim; }

    /** Total parameter count (LM head counted once when tied). */
    public long parameterCount() {
        long d = hiddenSize, f = intermediateSize;
        long perLayer = d * qDim() + 2L * d * kvDim() + (long) qDim() * d + 3L * d * f + 2L * d;
        long emb = (long) vocabSize * d;
        return emb + (tieWordEmbeddings ? 0 : emb) + numLayers * perLayer + d;
    }
}
