package dev.bdserve.model;

import dev.bdserve.tensor.Matrix;

import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * The slow twin of {@link LlamaModel}: a plain fp64 forward pass of one sequence that follows HF
 * {@code modeling_llama} line by line (RMSNorm, rotate-half RoPE, GQA with repeat_kv, SwiGLU), reading
 * every weight by its HF name, with the departures of the config's variant: q/k/v biases ({@code modeling_qwen2}),
 * per-head q/k RMSNorm before RoPE ({@code modeling_qwen3}), the sliding window ({@code modeling_mistral}), and
 * Gemma's ({@code modeling_gemma2}, {@code modeling_gemma3}): (1 + w) norms, embeddings ×√hidden, norms after attention
 * and MLP, tanh GELU, soft-capping, windowed and global layers with their own RoPE bases, query_pre_attn_scalar; and
 * Phi-3's ({@code modeling_phi3}): fused qkv_proj and gate_up_proj, LongRoPE with its attention factor. Used by
 * tests as the ground truth for the sharded, batched, vectorised path.
 */
public final class ReferenceLlama {
    private final LlamaConfig c;
    private final Function<String, double[][]> weight; // HF name -> [out][in]
    private final Function<String, double[]> vector;   // HF name -> [n]
    private final BiFunction<String, double[], double[]> input; // HF weight name, input row -> the row it multiplies

    public ReferenceLlama(TensorSource src) {
        this(src.config(), name -> toDouble(src.matrix(name)),
                name -> { float[] f = src.vector(name); double[] d = new double[f.length]; for (int i = 0; i < f.length; i++) d[i] = f[i]; return d; });
    }

    /** Custom weight access (e.g. merged LoRA weights W + s·B·A). */
    public ReferenceLlama(LlamaConfig c, Function<String, double[][]> weight, Function<String, double[]> vector) {
        this(c, weight, vector, (name, row) -> row);
    }

    private ReferenceLlama(LlamaConfig c, Function<String, double[][]> weight, Function<String, double[]> vector,
                           BiFunction<String, double[], double[]> input) {
        this.c = c;
        this.weight = weight;
        this.vector = vector;
        this.input = input;
    }

    /**
     * The same model with every projection's input row passed through {@code f} (weight name, row → row) first: how
     * an engine that rounds activations before a matrix product (llama.cpp's 8-bit ones) computes.
     */
    public ReferenceLlama withInputRounding(BiFunction<String, double[], double[]> f) {
        return new ReferenceLlama(c, weight, vector, f);
    }

    public static double[][] toDouble(Matrix m) {
        double[][] out = new double[m.rows()][m.cols()];
        for (int r = 0; r < m.rows(); r++) for (int k = 0; k < m.cols(); k++) out[r][k] = m.get(r, k);
        return out;
    }

    /** Logits [T][vocab] of every position of the token sequence. */
    public double[][] logits(int[] tokens) {
        int T = tokens.length, d = c.hiddenSize(), hd = c.headDim();
        double[][] emb = weight.apply("model.embed_tokens.weight");
        DecoderVariant var = c.variant();
        double[][] x = new double[T][];
        for (int t = 0; t < T; t++) {
            x[t] = emb[tokens[t]].clone();
            if (var.embedScale()) for (int i = 0; i < d; i++) x[t][i] *= (float) Math.sqrt(d);   // Gemma2Model: × normalizer
        }
        double[] inv = new double[hd / 2], invLocal = new double[hd / 2];
        float[] invF = Rope.inverseFrequencies(c, false), invL = Rope.inverseFrequencies(c, true);
        for (int i = 0; i < hd / 2; i++) { inv[i] = invF[i]; invLocal[i] = invL[i]; }
        double scale = 1 / Math.sqrt(var.queryPreAttnScalar() > 0 ? var.queryPreAttnScalar() : hd);
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] h = norm(x, vector.apply(p + "input_layernorm.weight"));
            double[][] q = linear(h, p + "self_attn.q_proj.weight");     // Phi-3: rows of qkv_proj (see weightOf)
            double[][] k = linear(h, p + "self_attn.k_proj.weight");
            double[][] v = linear(h, p + "self_attn.v_proj.weight");
            if (c.variant().qkvBias()) {                                  // modeling_qwen2: nn.Linear(..., bias=True)
                addBias(q, vector.apply(p + "self_attn.q_proj.bias"));
                addBias(k, vector.apply(p + "self_attn.k_proj.bias"));
                addBias(v, vector.apply(p + "self_attn.v_proj.bias"));
            }
            if (c.variant().qkNorm()) {                                   // modeling_qwen3: q_norm / k_norm over each head, before RoPE
                double[] qn = vector.apply(p + "self_attn.q_norm.weight"), kn = vector.apply(p + "self_attn.k_norm.weight");
                for (int t = 0; t < T; t++) {
                    for (int hh = 0; hh < c.numHeads(); hh++) headNorm(q[t], hh * hd, hd, gain(qn));
                    for (int hh = 0; hh < c.numKvHeads(); hh++) headNorm(k[t], hh * hd, hd, gain(kn));
                }
            }
            // masking_utils.sliding_window_overlay: j > t − window, on the windowed layers only (Gemma: is_sliding)
            int window = var.windowed(l) ? var.slidingWindow() : 0;
            double[] layerInv = var.windowed(l) ? invLocal : inv;         // Gemma 3: rotary_emb_local on sliding layers
            for (int t = 0; t < T; t++) {
                for (int hh = 0; hh < c.numHeads(); hh++) rope(q[t], hh * hd, t, layerInv);
                for (int hh = 0; hh < c.numKvHeads(); hh++) rope(k[t], hh * hd, t, layerInv);
            }
            double[][] attn = new double[T][c.qDim()];
            int group = c.numHeads() / c.numKvHeads();
            for (int t = 0; t < T; t++)
                for (int hh = 0; hh < c.numHeads(); hh++) {
                    int kvh = hh / group;
                    double[] s = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    int first = window > 0 ? Math.max(0, t - window + 1) : 0;
                    for (int j = first; j <= t; j++) {
                        double dot = 0;
                        for (int i = 0; i < hd; i++) dot += q[t][hh * hd + i] * k[j][kvh * hd + i];
                        s[j] = dot * scale;
                        if (var.attnSoftcap() > 0) s[j] = var.attnSoftcap() * Math.tanh(s[j] / var.attnSoftcap());   // Gemma 2
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = first; j <= t; j++) { s[j] = Math.exp(s[j] - max); sum += s[j]; }
                    for (int j = first; j <= t; j++)
                        for (int i = 0; i < hd; i++) attn[t][hh * hd + i] += s[j] / sum * v[j][kvh * hd + i];
                }
            double[][] o = linear(attn, p + "self_attn.o_proj.weight");
            if (var.sandwichNorm()) o = norm(o, vector.apply(p + "post_attention_layernorm.weight"));   // Gemma2DecoderLayer
            add(x, o);
            double[][] h2 = norm(x, vector.apply(p + (var.sandwichNorm() ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight")));
            double[][] g = linear(h2, p + "mlp.gate_proj.weight");
            double[][] u = linear(h2, p + "mlp.up_proj.weight");
            boolean gelu = var.activation() == DecoderVariant.Activation.GELU_TANH;
            for (int t = 0; t < T; t++)
                for (int i = 0; i < g[t].length; i++) {
                    double a = g[t][i];
                    double act = gelu ? 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a))) : a / (1 + Math.exp(-a));
                    g[t][i] = act * u[t][i];
                }
            double[][] down = linear(g, p + "mlp.down_proj.weight");
            if (var.sandwichNorm()) down = norm(down, vector.apply(p + "post_feedforward_layernorm.weight"));
            add(x, down);
        }
        double[][] xn = norm(x, vector.apply("model.norm.weight"));
        double[][] logits = linear(xn, c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight");
        if (var.finalSoftcap() > 0)                                       // Gemma2ForCausalLM: final_logit_softcapping
            for (double[] row : logits) for (int i = 0; i < row.length; i++) row[i] = var.finalSoftcap() * Math.tanh(row[i] / var.finalSoftcap());
        return logits;
    }

    /** A norm's gain: w, or 1 + w where the norms scale by (1 + w) (GemmaRMSNorm). */
    private double[] gain(double[] w) {
        if (c.variant().norm() == DecoderVariant.Norm.WEIGHT) return w;
        double[] g = new double[w.length];
        for (int i = 0; i < w.length; i++) g[i] = 1 + w[i];
        return g;
    }

    private double[][] norm(double[][] x, double[] w) {
        double[][] out = new double[x.length][];
        for (int t = 0; t < x.length; t++) {
            double ss = 0;
            for (double v : x[t]) ss += v * v;
            double r = 1 / Math.sqrt(ss / x[t].length + c.rmsNormEps());
            out[t] = new double[x[t].length];
            double[] g = gain(w);
            for (int i = 0; i < x[t].length; i++) out[t][i] = x[t][i] * r * g[i];
        }
        return out;
    }

    /**
     * The weight of an HF projection name; for Phi-3 (modeling_phi3) the q/k/v and gate/up parts are row ranges of
     * qkv_proj [q; k; v] and gate_up_proj [gate; up].
     */
    private double[][] weightOf(String name) {
        DecoderVariant v = c.variant();
        int qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize();
        String prefix = name.substring(0, name.lastIndexOf('.', name.lastIndexOf('.') - 1) + 1);
        if (v.fusedQkv() && name.matches(".*self_attn\\.[qkv]_proj\\.weight")) {
            double[][] w = weight.apply(prefix + "qkv_proj.weight");
            char part = name.charAt(name.lastIndexOf("_proj") - 1);
            int from = part == 'q' ? 0 : part == 'k' ? qd : qd + kvd;
            return java.util.Arrays.copyOfRange(w, from, from + (part == 'q' ? qd : kvd));
        }
        if (v.fusedGateUp() && name.matches(".*mlp\\.(gate|up)_proj\\.weight")) {
            double[][] w = weight.apply(prefix + "gate_up_proj.weight");
            int from = name.endsWith("gate_proj.weight") ? 0 : f;
            return java.util.Arrays.copyOfRange(w, from, from + f);
        }
        return weight.apply(name);
    }

    private double[][] linear(double[][] x, String name) {
        double[][] w = weightOf(name);
        double[][] y = new double[x.length][w.length];
        for (int t = 0; t < x.length; t++) {
            double[] in = input.apply(name, x[t]);
            for (int o = 0; o < w.length; o++) {
                double s = 0;
                for (int i = 0; i < w[o].length; i++) s += w[o][i] * in[i];
                y[t][o] = s;
            }
        }
        return y;
    }

    /** Rotate-half RoPE, cos and sin scaled by LongRoPE's attention factor (HF Phi3RotaryEmbedding.attention_scaling; 1 else). */
    private void rope(double[] x, int off, int pos, double[] inv) {
        int h = inv.length;
        double m = Rope.attentionFactor(c);
        for (int i = 0; i < h; i++) {
            double a = pos * (float) inv[i]; // HF forms the angle as an fp32 product, as the engine does
            double x1 = x[off + i], x2 = x[off + h + i], cos = Math.cos(a) * m, sin = Math.sin(a) * m;
            x[off + i] = x1 * cos - x2 * sin;
            x[off + h + i] = x2 * cos + x1 * sin;
        }
    }

    private static void addBias(double[][] x, double[] b) {
        for (double[] row : x) for (int i = 0; i < row.length; i++) row[i] += b[i];
    }

    /** RMSNorm of x[off .. off+n) in place (Qwen3RMSNorm over one head). */
    private void headNorm(double[] x, int off, int n, double[] w) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += x[off + i] * x[off + i];
        double r = 1 / Math.sqrt(ss / n + c.rmsNormEps());
        for (int i = 0; i < n; i++) x[off + i] = x[off + i] * r * w[i];
    }

    private static void add(double[][] x, double[][] y) {
        for (int t = 0; t < x.length; t++) for (int i = 0; i < x[t].length; i++) x[t][i] += y[t][i];
    }
}
