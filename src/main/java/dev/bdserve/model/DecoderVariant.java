package dev.bdserve.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * How a decoder departs from Llama's (HF {@code modeling_llama}), named so one config record and one forward pass
 * can describe the families that follow it (HF {@code modeling_qwen2}, {@code modeling_qwen3}, {@code modeling_mistral},
 * {@code modeling_gemma2}, {@code modeling_phi3}; llama.cpp's {@code src/models/}). {@link #LLAMA} is Llama's.
 *
 * @param family        the model family as config.json's model_type names it ("llama", "qwen2", ...)
 * @param qkvBias       q/k/v projections carry a bias (Qwen2)
 * @param qkNorm        an RMSNorm over each head of q and k before RoPE (Qwen3, Gemma 3)
 * @param norm          how a norm weight scales: w·x̂ (Llama) or (1 + w)·x̂ (Gemma)
 * @param activation    the gated MLP's activation
 * @param fusedQkv      checkpoints store q/k/v as one qkv_proj (Phi-3)
 * @param fusedGateUp   checkpoints store gate/up as one gate_up_proj (Phi-3)
 * @param slidingWindow attention span in positions, 0 for full attention (Mistral v0.1: 4096)
 */
public record DecoderVariant(String family, boolean qkvBias, boolean qkNorm, Norm norm, Activation activation,
                             boolean fusedQkv, boolean fusedGateUp, int slidingWindow) {
    /** RMSNorm's weighting of the normalised x̂. */
    public enum Norm { WEIGHT, ONE_PLUS_WEIGHT }

    /** The gate's activation in act(gate(x))·up(x). */
    public enum Activation { SILU, GELU_TANH }

    /** Llama: no bias, no q/k norm, w·x̂, SiLU, separate projections, full attention. */
    public static final DecoderVariant LLAMA = new DecoderVariant("llama", false, false, Norm.WEIGHT, Activation.SILU, false, false, 0);

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

    public DecoderVariant {
        if (family == null || family.isBlank()) throw new IllegalArgumentException("invalid model config: the model family must be named");
        Objects.requireNonNull(norm, "norm");
        Objects.requireNonNull(activation, "activation");
        if (slidingWindow < 0) throw new IllegalArgumentException("invalid model config: sliding_window must be >= 0, got " + slidingWindow);
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
        if (slidingWindow > 0) d.add("sliding window " + slidingWindow);
        return d;
    }
}
