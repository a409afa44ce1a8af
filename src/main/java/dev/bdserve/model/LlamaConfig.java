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
 * @param ropeScaling      long-context rope scaling (Llama 3.1 style), or null
 * @param tieWordEmbeddings tie_word_embeddings (LM head = embedding)
 * @param bosTokenId       bos_token_id (-1 if none)
 * @param eosTokenIds      eos_token_id (one or several)
 * @param torchDtype       torch_dtype as written ("float32", "bfloat16", "float16"), informational
 * @param variant          how the decoder departs from Llama's ({@link DecoderVariant#LLAMA} for Llama)
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
                          int numKvHeads, int headDim, int maxPositions, float rmsNormEps, double ropeTheta,
                          RopeScaling ropeScaling, boolean tieWordEmbeddings, int bosTokenId,
                          List<Integer> eosTokenIds, String torchDtype, DecoderVariant variant) {

    /** A Llama decoder's config. */
    public LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
                       int numKvHeads, int headDim, int maxPositions, float rmsNormEps, double ropeTheta,
                       RopeScaling ropeScaling, boolean tieWordEmbeddings, int bosTokenId,
                       List<Integer> eosTokenIds, String torchDtype) {
        this(vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, maxPositions, rmsNormEps, ropeTheta,
                ropeScaling, tieWordEmbeddings, bosTokenId, eosTokenIds, torchDtype, DecoderVariant.LLAMA);
    }

    /**
     * Long-context rope: each inverse frequency inv_freq[i] is divided by a factor, llama.cpp's {@code rope_freqs}
     * tensor. {@link Llama3} is HF's rope_scaling "llama3" (Llama 3.1 / 3.2); {@link Factors} holds the factors
     * themselves, as a GGUF file stores them.
     */
    public sealed interface RopeScaling permits RopeScaling.Llama3, RopeScaling.LongRope, RopeScaling.Factors {
        /** The divisor of each inverse frequency, [headDim / 2]. */
        float[] frequencyFactors(int headDim, double theta);

        /** HF rope_scaling with rope_type "llama3" (modeling_rope_utils._compute_llama3_parameters). */
        record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) implements RopeScaling {
            public Llama3 {
                if (!(factor >= 1) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositions <= 0)
                    throw new IllegalArgumentException("invalid llama3 rope_scaling: factor=" + factor + " low_freq_factor="
                            + lowFreqFactor + " high_freq_factor=" + highFreqFactor + " original_max_position_embeddings=" + originalMaxPositions);
            }

            /**
             * 1 for wavelengths below original/high, {@code factor} above original/low, and between them the inverse of
             * the linear blend (1 − s)/factor + s with s = (original/wavelength − low)/(high − low).
             */
            @Override public float[] frequencyFactors(int headDim, double theta) {
                float[] f = new float[headDim / 2];
                double lowWavelen = originalMaxPositions / lowFreqFactor, highWavelen = originalMaxPositions / highFreqFactor;
                for (int i = 0; i < f.length; i++) {
                    float inv = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
                    double wavelen = 2 * Math.PI / inv;
                    if (wavelen < highWavelen) f[i] = 1;
                    else if (wavelen > lowWavelen) f[i] = (float) factor;
                    else {
                        double s = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                        f[i] = (float) (1 / ((1 - s) / factor + s));
                    }
                }
                return f;
            }
        }

        /**
         * LongRoPE (HF rope_scaling "longrope", Phi-3's 128K models; modeling_rope_utils._compute_longrope_parameters):
         * per-frequency divisors for contexts up to {@code originalMaxPositions} ({@code shortFactors}) and beyond
         * ({@code longFactors}), and cos / sin scaled by {@code attentionFactor}. Which set a run uses is chosen once,
         * by its context limit (the config's max positions), as llama.cpp chooses by its context size; HF chooses by
         * each forward call's sequence length, which would change the keys already cached as a sequence grows.
         */
        record LongRope(float[] shortFactors, float[] longFactors, int originalMaxPositions, double attentionFactor) implements RopeScaling {
            public LongRope {
                shortFactors = shortFactors.clone();
                longFactors = longFactors.clone();
                if (shortFactors.length != longFactors.length)
                    throw new IllegalArgumentException("longrope short_factor has " + shortFactors.length + " values, long_factor " + longFactors.length);
                for (float[] fs : new float[][]{shortFactors, longFactors})
                    for (int i = 0; i < fs.length; i++)
                        if (!(fs[i] > 0) || !Float.isFinite(fs[i]))
                            throw new IllegalArgumentException("longrope factor " + i + " is " + fs[i] + " (must be finite and positive)");
                if (originalMaxPositions <= 0) throw new IllegalArgumentException("longrope original_max_position_embeddings must be positive");
                if (!(attentionFactor > 0) || !Double.isFinite(attentionFactor))
                    throw new IllegalArgumentException("longrope attention_factor must be finite and positive, got " + attentionFactor);
            }

            /** HF's default attention factor: √(1 + ln(max / original) / ln(original)), 1 when the model is not extended. */
            public static double defaultAttentionFactor(int maxPositions, int originalMaxPositions) {
                double factor = (double) maxPositions / originalMaxPositions;
                return factor <= 1 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions));
            }

            @Override public float[] shortFactors() { return shortFactors.clone(); }
            @Override public float[] longFactors() { return longFactors.clone(); }

            /** The divisors of a run whose context limit is {@code maxPositions}. */
            public float[] factorsFor(int maxPositions) { return (maxPositions > originalMaxPositions ? longFactors : shortFactors).clone(); }

            @Override public float[] frequencyFactors(int headDim, double theta) {
                throw new UnsupportedOperationException("longrope factors depend on the context limit: use factorsFor");
            }

            @Override public boolean equals(Object o) {
                return o instanceof LongRope l && java.util.Arrays.equals(shortFactors, l.shortFactors) && java.util.Arrays.equals(longFactors, l.longFactors)
                        && originalMaxPositions == l.originalMaxPositions && attentionFactor == l.attentionFactor;
            }
            @Override public int hashCode() { return java.util.Arrays.hashCode(shortFactors) * 31 + java.util.Arrays.hashCode(longFactors) + originalMaxPositions; }
            @Override public String toString() {
                return "LongRope[short=" + java.util.Arrays.toString(shortFactors) + ", long=" + java.util.Arrays.toString(longFactors)
                        + ", original=" + originalMaxPositions + ", attention_factor=" + attentionFactor + "]";
            }
        }

        /** Explicit per-frequency divisors, [headDim / 2], each finite and positive. */
        record Factors(float[] factors) implements RopeScaling {
            public Factors {
                factors = factors.clone();
                for (int i = 0; i < factors.length; i++)
                    if (!(factors[i] > 0) || !Float.isFinite(factors[i]))
                        throw new IllegalArgumentException("rope frequency factor " + i + " is " + factors[i] + " (must be finite and positive)");
            }

            @Override public float[] factors() { return factors.clone(); }

            @Override public float[] frequencyFactors(int headDim, double theta) {
                if (factors.length != headDim / 2)
                    throw new IllegalArgumentException(factors.length + " rope frequency factors for head_dim " + headDim);
                return factors.clone();
            }

            @Override public boolean equals(Object o) { return o instanceof Factors f && java.util.Arrays.equals(factors, f.factors); }
            @Override public int hashCode() { return java.util.Arrays.hashCode(factors); }
            @Override public String toString() { return "Factors" + java.util.Arrays.toString(factors); }
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
        if (ropeScaling instanceof RopeScaling.Factors f)
            require(f.factors.length == headDim / 2, f.factors.length + " rope frequency factors for head_dim " + headDim + " (need " + headDim / 2 + ")");
        if (ropeScaling instanceof RopeScaling.LongRope lr)
            require(lr.shortFactors.length == headDim / 2, lr.shortFactors.length + " longrope factors for head_dim " + headDim + " (need " + headDim / 2 + ")");
        eosTokenIds = List.copyOf(eosTokenIds);
        for (int e : eosTokenIds) require(e >= 0 && e < vocabSize, "eos_token_id " + e + " outside the vocabulary");
        require(bosTokenId < vocabSize, "bos_token_id " + bosTokenId + " outside the vocabulary");
        if (torchDtype == null) torchDtype = "float32";
        java.util.Objects.requireNonNull(variant, "variant");
    }

    private static void require(boolean ok, String msg) {
        if (!ok) throw new IllegalArgumentException("invalid model config: " + msg);
    }

    /** This config with another decoder variant. */
    public LlamaConfig withVariant(DecoderVariant v) {
        return new LlamaConfig(vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, maxPositions,
                rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, bosTokenId, eosTokenIds, torchDtype, v);
    }

    /** This config with another context limit (max_position_embeddings). */
    public LlamaConfig withMaxPositions(int n) {
        return new LlamaConfig(vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, n,
                rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, bosTokenId, eosTokenIds, torchDtype, variant);
    }

    /** This config with another vocabulary: its size and its BOS and EOS ids. */
    public LlamaConfig withVocabulary(int size, int bos, List<Integer> eos) {
        return new LlamaConfig(size, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, maxPositions,
                rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, bos, eos, torchDtype, variant);
    }

    /** This config with another torch_dtype. */
    public LlamaConfig withTorchDtype(String dtype) {
        return new LlamaConfig(vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, maxPositions,
                rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, bosTokenId, eosTokenIds, dtype, variant);
    }

    /** Width of the query projection output: numHeads × headDim. */
    public int qDim() { return numHeads * headDim; }

    /** Width of the key (and value) projection output: numKvHeads × headDim. */
    public int kvDim() { return numKvHeads * headDim; }

    /** Total parameter count (LM head counted once when tied). */
    public long parameterCount() {
        long d = hiddenSize, f = intermediateSize;
        long perLayer = d * qDim() + 2L * d * kvDim() + (long) qDim() * d + 3L * d * f + (variant.sandwichNorm() ? 4L : 2L) * d
                + (variant.qkvBias() ? qDim() + 2L * kvDim() : 0) + (variant.qkNorm() ? 2L * headDim : 0);
        long emb = (long) vocabSize * d;
        return emb + (tieWordEmbeddings ? 0 : emb) + numLayers * perLayer + d;
    }
}
