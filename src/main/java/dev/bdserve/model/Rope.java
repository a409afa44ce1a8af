package dev.bdserve.model;

/**
 * Rotary position embedding in the HF rotate-half layout (modeling_llama.rotate_half /
 * apply_rotary_pos_emb), with HF's default and "llama3" inverse frequencies
 * (modeling_rope_utils._compute_default_rope_parameters / _compute_llama3_parameters).
 */
public final class Rope {
    private final int headDim;
    private final float[] invFreq; // [headDim / 2]
    private final float mscale;    // cos and sin are scaled by this (LongRoPE's attention factor), else 1

    Rope(LlamaConfig c) {
        this(c, false);
    }

    /** The rotation of the model's global layers, or with {@code local} of its windowed ones (see {@link #inverseFrequencies(LlamaConfig, boolean)}). */
    Rope(LlamaConfig c, boolean local) {
        this.headDim = c.headDim();
        this.invFreq = inverseFrequencies(c, local);
        this.mscale = (float) attentionFactor(c);
    }

    /** The factor cos and sin are multiplied by: LongRoPE's attention factor (HF Phi3RotaryEmbedding's attention_scaling), else 1. */
    public static double attentionFactor(LlamaConfig c) {
        return c.ropeScaling() instanceof LlamaConfig.RopeScaling.LongRope lr ? lr.attentionFactor() : 1.0;
    }

    /**
     * The inverse frequencies of the windowed layers ({@code local}) or the others: a variant with a local RoPE base
     * (Gemma 3's rope_local_base_freq) gives its windowed layers θ_local^(−2i/d) without long-context scaling, as
     * HF modeling_gemma3's rotary_emb_local.
     */
    public static float[] inverseFrequencies(LlamaConfig c, boolean local) {
        double theta = c.variant().localRopeTheta();
        if (!local || theta <= 0) return inverseFrequencies(c);
        float[] inv = new float[c.headDim() / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / c.headDim()));
        return inv;
    }

    /**
     * The row of a q/k projection stored in interleaved-pair order (Meta's and llama2.c's checkpoints, llama.cpp's
     * {@code llama} GGUF files) that holds HF rotate-half row {@code r}: per head, HF row j is row 2j and HF row
     * head_dim/2 + j is row 2j + 1.
     */
    public static int interleavedRow(int r, int headDim) {
        int half = headDim / 2, head = r / headDim, j = r % headDim;
        return head * headDim + (j < half ? 2 * j : 2 * (j - half) + 1);
    }

    /**
     * inv_freq[i] = θ^(−2i/d), rescaled for long context when configured: HF's llama3 formula, or llama.cpp's
     * {@code rope_freqs} factors (inv_freq[i] / factor[i]).
     */
    public static float[] inverseFrequencies(LlamaConfig c) {
        int half = c.headDim() / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) inv[i] = (float) (1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim()));
        switch (c.ropeScaling()) {
            case null -> { }
            case LlamaConfig.RopeScaling.LongRope lr -> {          // inv_freq / ext_factor (the set the context limit picks)
                float[] factor = lr.factorsFor(c.maxPositions());
                for (int i = 0; i < half; i++) inv[i] = (float) (1.0 / (factor[i] * Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim())));
            }
            case LlamaConfig.RopeScaling.Factors f -> {
                float[] factor = f.frequencyFactors(c.headDim(), c.ropeTheta());
                for (int i = 0; i < half; i++) inv[i] /= factor[i];
            }
            case LlamaConfig.RopeScaling.Llama3 s -> {
                double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
                double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
                for (int i = 0; i < half; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen < highWavelen) continue;                       // high frequency: unchanged
                    if (wavelen > lowWavelen) { inv[i] = (float) (inv[i] / s.factor()); continue; } // low frequency: scaled
                    double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                    inv[i] = (float) ((1 - smooth) * inv[i] / s.factor() + smooth * inv[i]);
                }
            }
        }
        return inv;
    }

    /** cos and sin of position × invFreq into cos[off ..], sin[off ..] (headDim/2 each). */
    void angles(int position, float[] cos, float[] sin, int off) {
        for (int i = 0; i < invFreq.length; i++) {
            float a = position * invFreq[i];
            cos[off + i] = (float) Math.cos(a) * mscale;
            sin[off + i] = (float) Math.sin(a) * mscale;
        }
    }

    /**
     * Rotates one head vector x[off .. off+headDim) in place:
     * out[i] = x[i]·cos_i − x[i+h]·sin_i, out[i+h] = x[i+h]·cos_i + x[i]·sin_i, h = headDim/2.
     */
    void rotate(float[] x, int off, float[] cos, float[] sin, int csOff) {
        int h = headDim / 2;
        for (int i = 0; i < h; i++) {
            float x1 = x[off + i], x2 = x[off + h + i];
            float c = cos[csOff + i], s = sin[csOff + i];
            x[off + i] = x1 * c - x2 * s;
            x[off + h + i] = x2 * c + x1 * s;
        }
    }
}
