package dev.bdserve.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * How a decoder departs from Llama's (HF {@code modeling_llama}), named so one config record and one forward pass
 * can describe the families that follow it (HF {@code modeling_qwen2}, {@code modeling_qwen3}, {@code modeling_mistral},
 * {@code modeling_gemma2}, {@code modeling_gemma3}, {@code modeling_phi3}; llama.cpp's {@code src/models/}).
 * {@link #LLAMA} is Llama's.
 *
 * @param family             the model family as config.json's model_type names it ("llama", "qwen2", ...)
 * @param qkvBias            q/k/v projections carry a bias (Qwen2)
 * @param qkNorm             an RMSNorm over each head of q and k before RoPE (Qwen3, Gemma 3)
 * @param norm               how the stored norm weights scale x̂: w·x̂ (Llama; GGUF files of Gemma, which store 1 + w)
 *                           or (1 + w)·x̂ (HF Gemma checkpoints)
 * @param activation         the gated MLP's activation
 * @param fusedQkv           checkpoints store q/k/v as one qkv_proj (Phi-3)
 * @param fusedGateUp        checkpoints store gate/up as one gate_up_proj (Phi-3)
 * @param slidingWindow      attention span in positions of the windowed layers, 0 for full attention everywhere
 *                           (Mistral v0.1: 4096; Gemma 2: 4096; Gemma 3: 512)
 * @param slidingPattern     which layers are windowed: with n > 0, layer i is windowed iff i mod n < n − 1 (Gemma 2:
 *                           2, every other layer from the first; Gemma 3: 6, five local layers per global one); 0: all
 * @param embedScale         the embeddings are multiplied by √hidden (Gemma)
 * @param sandwichNorm       attention and MLP outputs pass an RMSNorm of their own before the residual add
 *                           (Gemma 2/3: post_attention_layernorm, pre_ / post_feedforward_layernorm)
 * @param attnSoftcap        attention scores become c·tanh(s / c) before the softmax (Gemma 2: 50), 0 for none
 * @param finalSoftcap       logits become c·tanh(z / c) (Gemma 2: 30), 0 for none
 * @param queryPreAttnScalar attention scores are divided by √ of this instead of √head_dim (Gemma), 0 for head_dim
 * @param localRopeTheta     RoPE base of the windowed layers (Gemma 3: 10000), 0 for the model's rope_theta
 */
public record DecoderVariant(String family, boolean qkvBias, boolean qkNorm, Norm norm, Activation activation,
                             boolean fusedQkv, boolean fusedGateUp, int slidingWindow, int slidingPattern,
                             boolean embedScale, boolean sandwichNorm, float attnSoftcap, float finalSoftcap,
                             float queryPreAttnScalar, double localRopeTheta) {
    /** RMSNorm's weighting of the normalised x̂. */
    public enum Norm { WEIGHT, ONE_PLUS_WEIGHT }

    /** The gate's activation in act(gate(x))·up(x). */
    public enum Activation { SILU, GELU_TANH }

    /** Llama: no bias, no q/k norm, w·x̂, SiLU, separate projections, full attention. */
    public static final DecoderVariant LLAMA = new DecoderVariant("llama", false, false, Norm.WEIGHT, Activation.SILU, false, false, 0);

    /** A variant without Gemma's departures. */
    public DecoderVariant(String family, boolean qkvBias, boolean qkNorm, Norm norm, Activation activation,
                          boolean fusedQkv, boolean fusedGateUp, int slidingWindow) {
        this(family, qkvBias, qkNorm, norm, activation, fusedQkv, fusedGateUp, slidingWindow, 0, false, false, 0, 0, 0, 0);
    }

    /** HF modeling_qwen2 (Qwen2, Qwen2.5): q/k/v projections with a bias; full attention unless a window is given. */
    public static DecoderVariant qwen2(int slidingWindow) {
        return new DecoderVariant("qwen2", true, false, Norm.WEIGHT, Activation.SILU, false, false, slidingWindow);
    }

    /** HF modeling_qwen3 (dense Qwen3): an RMSNorm over each head of q and k before RoPE, no projection biases. */
    public static DecoderVariant qwen3(int slidingWindow) {
        return new DecoderVariant("qwen3", false, true, Norm.WEIGHT, Activation.SILU, false, false, slidingWindow);
    }

    /** HF modeling_mistral: Llama's decoder with a sliding attention window (0: full attention). */
    public static DecoderVariant mistral(int slidingWindow) {
        return new DecoderVariant("mistral", false, false, Norm.WEIGHT, Activation.SILU, false, false, slidingWindow);
    }

    /**
     * HF modeling_gemma2 (llama.cpp src/models/gemma2.cpp): embeddings ×√hidden, GeGLU (tanh GELU), sandwich norms,
     * attention and final logit soft-capping, windowed and global layers alternating, scores over √queryPreAttnScalar.
     */
    public static DecoderVariant gemma2(Norm norm, int slidingWindow, float attnSoftcap, float finalSoftcap, float queryPreAttnScalar) {
        return new DecoderVariant("gemma2", false, false, norm, Activation.GELU_TANH, false, false, slidingWindow, 2, true, true,
                attnSoftcap, finalSoftcap, queryPreAttnScalar, 0);
    }

    /**
     * HF modeling_gemma3, text part (llama.cpp src/models/gemma3.cpp): Gemma 2 without soft-capping, with q/k RMSNorm,
     * {@code pattern − 1} windowed layers per global one, and a RoPE base of their own for the windowed layers.
     */
    public static DecoderVariant gemma3(Norm norm, int slidingWindow, int pattern, double localRopeTheta, float queryPreAttnScalar) {
        return new DecoderVariant("gemma3", false, true, norm, Activation.GELU_TANH, false, false, slidingWindow, pattern, true, true,
                0, 0, queryPreAttnScalar, localRopeTheta);
    }

    /**
     * HF modeling_phi3 (llama.cpp src/models/phi3.cpp): Llama's decoder with q/k/v stored as one qkv_proj and gate/up as
     * one gate_up_proj, and a sliding window on every layer (Phi-3-mini-4k: 2047; 0: none).
     */
    public static DecoderVariant phi3(int slidingWindow) {
        return new DecoderVariant("phi3", false, false, Norm.WEIGHT, Activation.SILU, true, true, slidingWindow);
    }

    public DecoderVariant {
        if (family == null || family.isBlank()) throw new IllegalArgumentException("invalid model config: the model family must be named");
        Objects.requireNonNull(norm, "norm");
        Objects.requireNonNull(activation, "activation");
        if (slidingWindow < 0) throw new IllegalArgumentException("invalid model config: sliding_window must be >= 0, got " + slidingWindow);
        if (slidingPattern < 0) throw new IllegalArgumentException("invalid model config: the sliding window pattern must be >= 0, got " + slidingPattern);
        if (!(attnSoftcap >= 0) || !(finalSoftcap >= 0) || !Float.isFinite(attnSoftcap) || !Float.isFinite(finalSoftcap))
            throw new IllegalArgumentException("invalid model config: soft-capping values must be finite and >= 0, got " + attnSoftcap + " and " + finalSoftcap);
        if (!(queryPreAttnScalar >= 0) || !Float.isFinite(queryPreAttnScalar))
            throw new IllegalArgumentException("invalid model config: query_pre_attn_scalar must be positive, got " + queryPreAttnScalar);
        if (!(localRopeTheta >= 0) || !Double.isFinite(localRopeTheta))
            throw new IllegalArgumentException("invalid model config: rope_local_base_freq must be positive, got " + localRopeTheta);
    }

    /** Whether layer {@code l} attends over the sliding window (else over the whole sequence). */
    public boolean windowed(int l) {
        return slidingWindow > 0 && (slidingPattern == 0 || l % slidingPattern < slidingPattern - 1);
    }

    /** This variant with its norm weights stored the other way (GGUF files of Gemma hold 1 + w). */
    public DecoderVariant withNorm(Norm n) {
        return new DecoderVariant(family, qkvBias, qkNorm, n, activation, fusedQkv, fusedGateUp, slidingWindow, slidingPattern, embedScale,
                sandwichNorm, attnSoftcap, finalSoftcap, queryPreAttnScalar, localRopeTheta);
    }

    /** This variant with another sliding window (0: full attention). */
    public DecoderVariant withSlidingWindow(int w) {
        return new DecoderVariant(family, qkvBias, qkNorm, norm, activation, fusedQkv, fusedGateUp, w, slidingPattern, embedScale,
                sandwichNorm, attnSoftcap, finalSoftcap, queryPreAttnScalar, localRopeTheta);
    }

    /** The ways this variant differs from {@link #LLAMA}, one phrase each (empty for Llama's). */
    public List<String> departures() {
        List<String> d = new ArrayList<>();
        if (qkvBias) d.add("q/k/v bias");
        if (qkNorm) d.add("q/k RMSNorm");
        if (norm != Norm.WEIGHT) d.add("norm " + norm);
        if (activation != Activation.SILU) d.add("activation " + activation);
        if (fusedQkv) d.add("fused qkv_proj");
        if (fusedGateUp) d.add("fused gate_up_proj");
        if (slidingWindow > 0) d.add("sliding window " + slidingWindow + (slidingPattern > 0 ? " on " + (slidingPattern - 1) + " of " + slidingPattern + " layers" : ""));
        if (embedScale) d.add("embeddings ×√hidden");
        if (sandwichNorm) d.add("norms after attention and MLP");
        if (attnSoftcap > 0) d.add("attention soft-cap " + attnSoftcap);
        if (finalSoftcap > 0) d.add("final logit soft-cap " + finalSoftcap);
        if (queryPreAttnScalar > 0) d.add("query_pre_attn_scalar " + queryPreAttnScalar);
        if (localRopeTheta > 0) d.add("local RoPE base " + localRopeTheta);
        return d;
    }
}
