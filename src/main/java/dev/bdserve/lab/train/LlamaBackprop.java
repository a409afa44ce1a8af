package dev.bdserve.lab.train;

import dev.bdserve.lora.LoraModule;
import dev.bdserve.model.LlamaConfig;

import java.util.Arrays;

/**
 * Forward and backward pass of the frozen Llama with LoRA / BD-LoRA on its projections, for one sequence,
 * in fp32. The forward mirrors HF {@code modeling_llama} (LlamaRMSNorm, rotate-half RoPE, GQA via
 * repeat_kv, SwiGLU LlamaMLP, causal softmax attention) and {@code LlamaForCausalLM}'s shifted
 * cross-entropy; the backward is its exact transpose, one method per layer type. Only the adapter factors
 * receive gradients; the base weights are frozen. Thread-safe: all state lives in the {@link Workspace}.
 */
public final class LlamaBackprop {
    private final FrozenLlama w;
    private final LlamaConfig c;
    private final int d, hd, heads, kvHeads, qd, kvd, ffn, vocab, group;
    private final float attnScale;
    private final float[][][] transposed; // [layer][q, k, v, o, gate, up, down] Wᵀ [in, out] for the forward
    private final float[] lmHeadT;        // lm_head ᵀ [d, vocab]
    private final float[] cos, sin;       // RoPE tables [maxPositions, headDim/2]

    public LlamaBackprop(FrozenLlama weights) {
        this.w = weights;
        this.c = weights.config();
        this.d = c.hiddenSize();
        this.hd = c.headDim();
        this.heads = c.numHeads();
        this.kvHeads = c.numKvHeads();
        this.qd = c.qDim();
        this.kvd = c.kvDim();
        this.ffn = c.intermediateSize();
        this.vocab = c.vocabSize();
        this.group = heads / kvHeads;
        this.attnScale = (float) (1.0 / Math.sqrt(hd));
        this.transposed = new float[c.numLayers()][][];
        for (int l = 0; l < c.numLayers(); l++) {
            FrozenLlama.Layer lw = w.layers()[l];
            transposed[l] = new float[][]{TrainKernels.transpose(lw.wq(), qd, d), TrainKernels.transpose(lw.wk(), kvd, d),
                    TrainKernels.transpose(lw.wv(), kvd, d), TrainKernels.transpose(lw.wo(), d, qd),
                    TrainKernels.transpose(lw.wGate(), ffn, d), TrainKernels.transpose(lw.wUp(), ffn, d), TrainKernels.transpose(lw.wDown(), d, ffn)};
        }
        this.lmHeadT = TrainKernels.transpose(w.lmHead(), vocab, d);
        int half = hd / 2, P = c.maxPositions();
        this.cos = new float[P * half];
        this.sin = new float[P * half];
        for (int p = 0; p < P; p++)
            for (int i = 0; i < half; i++) {
                float ang = p * w.invFreq()[i];              // formed in fp32, as the engine's Rope does
                cos[p * half + i] = (float) Math.cos(ang);
                sin[p * half + i] = (float) Math.sin(ang);
            }
    }

    public LlamaConfig config() { return c; }
    public FrozenLlama weights() { return w; }

    /** Loss of one sequence: Σ weight·CE and Σ weight over its predicted positions. */
    public record Loss(double sum, double weight) {}

    /**
     * Runs the sequence {@code tokens[0..n)}: position t predicts tokens[t+1] with loss weight
     * {@code weights[t]} (0 masks it out; length n−1). Returns Σ weight·CE. With {@code grads} non-null it
     * also backpropagates d(gradScale·Σ weight·CE) into {@code grads}' gradient buffers (which may be the
     * adapter itself or a per-thread twin).
     */
    public Loss run(int[] tokens, float[] weights, TrainableAdapter adapter, TrainableAdapter grads, float gradScale, Workspace ws) {
        int T = tokens.length - 1;
        if (T < 1) throw new IllegalArgumentException("a training sequence needs at least 2 tokens");
        if (weights.length != T) throw new IllegalArgumentException("one loss weight per predicted position expected");
        if (tokens.length > c.maxPositions()) throw new IllegalArgumentException("sequence of " + tokens.length + " tokens exceeds the context of " + c.maxPositions());
        ws.ensure(T, adapter == null ? 0 : adapter.spec().rank());
        embed(tokens, T, ws.x);
        for (int l = 0; l < w.layers().length; l++) {
            LayerCache lc = ws.layers[l];
            System.arraycopy(ws.x, 0, lc.xIn, 0, T * d);
            attentionForward(l, T, adapter, lc, ws);
            System.arraycopy(ws.x, 0, lc.xMid, 0, T * d);
            mlpForward(l, T, adapter, lc, ws);
        }
        rmsnormForward(ws.x, w.finalNorm(), T, ws.xnF, ws.rstdF);
        Loss loss = lmHeadLoss(tokens, weights, T, grads != null, gradScale, ws);   // fills ws.dx with d/d(xnF)
        if (grads == null) return loss;
        Arrays.fill(ws.dres, 0, T * d, 0f);
        rmsnormBackward(ws.x, w.finalNorm(), ws.rstdF, ws.dx, T, ws.dres);         // residual gradient
        for (int l = w.layers().length - 1; l >= 0; l--) {
            LayerCache lc = ws.layers[l];
            mlpBackward(l, T, adapter, grads, lc, ws);
            attentionBackward(l, T, adapter, grads, lc, ws);
        }
        return loss;
    }

    // ---------------------------------------------------------------- embedding and LM head

    /** x[t, :] = embed_tokens[tokens[t], :]. */
    private void embed(int[] tokens, int T, float[] x) {
        for (int t = 0; t < T; t++) {
            int id = tokens[t];
            if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " outside the vocabulary");
            System.arraycopy(w.embed(), id * d, x, t * d, d);
        }
    }

    /**
     * logits = lm_head(xnF); loss = Σ_t weight_t·(logsumexp(logits_t) − logits_t[target]) (CrossEntropyLoss
     * of LlamaForCausalLM, sum form). dlogits = gradScale·weight·(softmax − onehot); writes dxnF into ws.dx.
     */
    private Loss lmHeadLoss(int[] tokens, float[] weights, int T, boolean backward, float gradScale, Workspace ws) {
        float[] logits = ws.logits;
        double sum = 0, wsum = 0;
        if (backward) Arrays.fill(ws.dx, 0, T * d, 0f);
        for (int t = 0; t < T; t++) {
            float wt = weights[t];
            if (wt == 0) continue;
            int target = tokens[t + 1];
            java.util.Arrays.fill(logits, 0f);
            for (int i = 0; i < d; i++) TrainKernels.axpy(ws.xnF[t * d + i], lmHeadT, i * vocab, logits, 0, vocab);
            float max = Float.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) max = Math.max(max, logits[v]);
            double z = 0;
            for (int v = 0; v < vocab; v++) z += Math.exp(logits[v] - max);
            double lse = max + Math.log(z);
            sum += wt * (lse - logits[target]);
            wsum += wt;
            if (!backward) continue;
            for (int v = 0; v < vocab; v++)                                         // dlogits, in place
                logits[v] = (float) (gradScale * wt * (Math.exp(logits[v] - lse) - (v == target ? 1 : 0)));
            for (int i = 0; i < d; i++)                                             // dxnF[t] = lm_headᵀ·dlogits
                ws.dx[t * d + i] = TrainKernels.dot(lmHeadT, i * vocab, logits, 0, vocab);
        }
        return new Loss(sum, wsum);
    }

    // ---------------------------------------------------------------- RMSNorm (LlamaRMSNorm)

    /** out = x·rstd·w, rstd = 1/sqrt(mean(x²) + eps), per row of [T, d]. */
    private void rmsnormForward(float[] x, float[] weight, int T, float[] out, float[] rstd) {
        for (int t = 0; t < T; t++) {
            float ss = TrainKernels.dot(x, t * d, x, t * d, d);
            float r = (float) (1.0 / Math.sqrt(ss / d + c.rmsNormEps()));
            rstd[t] = r;
            for (int i = 0; i < d; i++) out[t * d + i] = x[t * d + i] * r * weight[i];
        }
    }

    /** dx += rstd·(w·dout) − x·rstd³·Σ(w·dout·x)/d, the transpose of {@link #rmsnormForward}. */
    private void rmsnormBackward(float[] x, float[] weight, float[] rstd, float[] dout, int T, float[] dx) {
        for (int t = 0; t < T; t++) {
            float r = rstd[t], dotp = 0;
            for (int i = 0; i < d; i++) dotp += weight[i] * dout[t * d + i] * x[t * d + i];
            float k = r * r * r * dotp / d;
            for (int i = 0; i < d; i++) dx[t * d + i] += r * weight[i] * dout[t * d + i] - k * x[t * d + i];
        }
    }

    // ---------------------------------------------------------------- linear layers with LoRA

    /** y[T, out] = x·Wᵀ + s·B·A·x from weightT = Wᵀ (the LoRA's shrink u = A·x saved for the backward). */
    private void projForward(float[] weightT, int out, int in, float[] x, int T, float[] y, LoraFactor f, float[] u, float[] bT) {
        TrainKernels.linearT(weightT, out, in, x, T, y);
        if (f == null) return;
        f.transposeB(bT);
        f.shrink(x, T, u);
        f.expand(u, bT, T, y);
    }

    /** dx[T, in] += dy·W + LoRA's input gradient; LoRA factor gradients into g. */
    private void projBackward(float[] weight, int out, int in, float[] x, float[] dy, int T, float[] dx,
                              LoraFactor f, float[] u, float[] bT, LoraFactor g, Workspace ws) {
        TrainKernels.linearBackward(weight, out, in, dy, T, dx);
        if (f != null) f.backward(x, u, bT, dy, T, ws.scratch, dx, g);
    }

    private static LoraFactor factor(TrainableAdapter a, int l, LoraModule m) { return a == null ? null : a.get(l, m); }

    // ---------------------------------------------------------------- attention (LlamaAttention)

    /** x += o_proj(softmax(rope(q)·rope(k)ᵀ/√hd + causal)·v), q/k/v from input_layernorm(x). */
    private void attentionForward(int l, int T, TrainableAdapter a, LayerCache lc, Workspace ws) {
        FrozenLlama.Layer lw = w.layers()[l];
        rmsnormForward(ws.x, lw.attnNorm(), T, lc.xn1, lc.rstd1);
        projForward(transposed[l][0], qd, d, lc.xn1, T, lc.q, factor(a, l, LoraModule.Q), lc.u[LoraModule.Q.ordinal()], lc.bT[LoraModule.Q.ordinal()]);
        projForward(transposed[l][1], kvd, d, lc.xn1, T, lc.k, factor(a, l, LoraModule.K), lc.u[LoraModule.K.ordinal()], lc.bT[LoraModule.K.ordinal()]);
        projForward(transposed[l][2], kvd, d, lc.xn1, T, lc.v, factor(a, l, LoraModule.V), lc.u[LoraModule.V.ordinal()], lc.bT[LoraModule.V.ordinal()]);
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < heads; h++) rope(lc.q, t * qd + h * hd, t, false);
            for (int h = 0; h < kvHeads; h++) rope(lc.k, t * kvd + h * hd, t, false);
        }
        // probs [heads, T, T] (row t holds positions 0..t), attn [T, qd]
        Arrays.fill(lc.attn, 0, T * qd, 0f);
        for (int h = 0; h < heads; h++) {
            int kvOff = (h / group) * hd;
            for (int t = 0; t < T; t++) {
                int pRow = (h * T + t) * T;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j <= t; j++) {
                    float s = TrainKernels.dot(lc.q, t * qd + h * hd, lc.k, j * kvd + kvOff, hd) * attnScale;
                    lc.probs[pRow + j] = s;
                    max = Math.max(max, s);
                }
                float sum = 0;
                for (int j = 0; j <= t; j++) { float e = (float) Math.exp(lc.probs[pRow + j] - max); lc.probs[pRow + j] = e; sum += e; }
                float inv = 1 / sum;
                for (int j = 0; j <= t; j++) {
                    lc.probs[pRow + j] *= inv;
                    TrainKernels.axpy(lc.probs[pRow + j], lc.v, j * kvd + kvOff, lc.attn, t * qd + h * hd, hd);
                }
            }
        }
        projForward(transposed[l][3], d, qd, lc.attn, T, ws.proj, factor(a, l, LoraModule.O), lc.u[LoraModule.O.ordinal()], lc.bT[LoraModule.O.ordinal()]);
        for (int i = 0; i < T * d; i++) ws.x[i] += ws.proj[i];
    }

    /** Backward of {@link #attentionForward}: ws.dres is d(loss)/d(x after the block) and becomes d/d(x before). */
    private void attentionBackward(int l, int T, TrainableAdapter a, TrainableAdapter g, LayerCache lc, Workspace ws) {
        FrozenLlama.Layer lw = w.layers()[l];
        float[] dattn = ws.dattn, dq = ws.dq, dk = ws.dk, dv = ws.dv;
        Arrays.fill(dattn, 0, T * qd, 0f);
        projBackward(lw.wo(), d, qd, lc.attn, ws.dres, T, dattn, factor(a, l, LoraModule.O), lc.u[LoraModule.O.ordinal()], lc.bT[LoraModule.O.ordinal()],
                factor(g, l, LoraModule.O), ws);
        Arrays.fill(dq, 0, T * qd, 0f);
        Arrays.fill(dk, 0, T * kvd, 0f);
        Arrays.fill(dv, 0, T * kvd, 0f);
        float[] dp = ws.dp;
        for (int h = 0; h < heads; h++) {
            int kvOff = (h / group) * hd;
            for (int t = 0; t < T; t++) {
                int pRow = (h * T + t) * T, oOff = t * qd + h * hd;
                float sum = 0;
                for (int j = 0; j <= t; j++) {
                    dp[j] = TrainKernels.dot(dattn, oOff, lc.v, j * kvd + kvOff, hd);        // dP = dout·v
                    sum += lc.probs[pRow + j] * dp[j];
                    TrainKernels.axpy(lc.probs[pRow + j], dattn, oOff, dv, j * kvd + kvOff, hd); // dv += P·dout
                }
                for (int j = 0; j <= t; j++) {
                    float ds = lc.probs[pRow + j] * (dp[j] - sum) * attnScale;                 // softmax backward, scaled
                    if (ds == 0) continue;
                    TrainKernels.axpy(ds, lc.k, j * kvd + kvOff, dq, oOff, hd);
                    TrainKernels.axpy(ds, lc.q, oOff, dk, j * kvd + kvOff, hd);
                }
            }
        }
        for (int t = 0; t < T; t++) {                                                          // RoPE is a rotation: transpose = rotate back
            for (int h = 0; h < heads; h++) rope(dq, t * qd + h * hd, t, true);
            for (int h = 0; h < kvHeads; h++) rope(dk, t * kvd + h * hd, t, true);
        }
        float[] dxn = ws.dx;
        Arrays.fill(dxn, 0, T * d, 0f);
        projBackward(lw.wq(), qd, d, lc.xn1, dq, T, dxn, factor(a, l, LoraModule.Q), lc.u[LoraModule.Q.ordinal()], lc.bT[LoraModule.Q.ordinal()], factor(g, l, LoraModule.Q), ws);
        projBackward(lw.wk(), kvd, d, lc.xn1, dk, T, dxn, factor(a, l, LoraModule.K), lc.u[LoraModule.K.ordinal()], lc.bT[LoraModule.K.ordinal()], factor(g, l, LoraModule.K), ws);
        projBackward(lw.wv(), kvd, d, lc.xn1, dv, T, dxn, factor(a, l, LoraModule.V), lc.u[LoraModule.V.ordinal()], lc.bT[LoraModule.V.ordinal()], factor(g, l, LoraModule.V), ws);
        rmsnormBackward(lc.xIn, lw.attnNorm(), lc.rstd1, dxn, T, ws.dres);                   // residual: dres passes through
    }

    /**
     * Rotate-half RoPE of one head vector at position pos (HF apply_rotary_pos_emb, angle formed in fp32 as
     * the engine does); {@code inverse} rotates by −angle, which is the transpose used in the backward.
     */
    private void rope(float[] x, int off, int pos, boolean inverse) {
        int half = hd / 2;
        for (int i = 0; i < half; i++) {
            float cs = cos[pos * half + i], sn = inverse ? -sin[pos * half + i] : sin[pos * half + i];
            float x1 = x[off + i], x2 = x[off + half + i];
            x[off + i] = x1 * cs - x2 * sn;
            x[off + half + i] = x2 * cs + x1 * sn;
        }
    }

    // ---------------------------------------------------------------- MLP (LlamaMLP, SwiGLU)

    /** x += down_proj(silu(gate_proj(x̂))·up_proj(x̂)), x̂ = post_attention_layernorm(x). */
    private void mlpForward(int l, int T, TrainableAdapter a, LayerCache lc, Workspace ws) {
        FrozenLlama.Layer lw = w.layers()[l];
        rmsnormForward(ws.x, lw.ffnNorm(), T, lc.xn2, lc.rstd2);
        projForward(transposed[l][4], ffn, d, lc.xn2, T, lc.gate, factor(a, l, LoraModule.GATE), lc.u[LoraModule.GATE.ordinal()], lc.bT[LoraModule.GATE.ordinal()]);
        projForward(transposed[l][5], ffn, d, lc.xn2, T, lc.up, factor(a, l, LoraModule.UP), lc.u[LoraModule.UP.ordinal()], lc.bT[LoraModule.UP.ordinal()]);
        for (int i = 0; i < T * ffn; i++) {
            float gv = lc.gate[i];
            lc.act[i] = gv / (1 + (float) Math.exp(-gv)) * lc.up[i];
        }
        projForward(transposed[l][6], d, ffn, lc.act, T, ws.proj, factor(a, l, LoraModule.DOWN), lc.u[LoraModule.DOWN.ordinal()], lc.bT[LoraModule.DOWN.ordinal()]);
        for (int i = 0; i < T * d; i++) ws.x[i] += ws.proj[i];
    }

    /** Backward of {@link #mlpForward}: ws.dres is d/d(x after) and becomes d/d(x before). */
    private void mlpBackward(int l, int T, TrainableAdapter a, TrainableAdapter g, LayerCache lc, Workspace ws) {
        FrozenLlama.Layer lw = w.layers()[l];
        float[] dact = ws.dact, dgate = ws.dgate, dup = ws.dup;
        Arrays.fill(dact, 0, T * ffn, 0f);
        projBackward(lw.wDown(), d, ffn, lc.act, ws.dres, T, dact, factor(a, l, LoraModule.DOWN), lc.u[LoraModule.DOWN.ordinal()], lc.bT[LoraModule.DOWN.ordinal()],
                factor(g, l, LoraModule.DOWN), ws);
        for (int i = 0; i < T * ffn; i++) {                       // act = silu(gate)·up
            float gv = lc.gate[i];
            float sig = 1 / (1 + (float) Math.exp(-gv));
            float silu = gv * sig;
            dup[i] = dact[i] * silu;
            dgate[i] = dact[i] * lc.up[i] * sig * (1 + gv * (1 - sig));
        }
        float[] dxn = ws.dx;
        Arrays.fill(dxn, 0, T * d, 0f);
        projBackward(lw.wGate(), ffn, d, lc.xn2, dgate, T, dxn, factor(a, l, LoraModule.GATE), lc.u[LoraModule.GATE.ordinal()], lc.bT[LoraModule.GATE.ordinal()],
                factor(g, l, LoraModule.GATE), ws);
        projBackward(lw.wUp(), ffn, d, lc.xn2, dup, T, dxn, factor(a, l, LoraModule.UP), lc.u[LoraModule.UP.ordinal()], lc.bT[LoraModule.UP.ordinal()],
                factor(g, l, LoraModule.UP), ws);
        rmsnormBackward(lc.xMid, lw.ffnNorm(), lc.rstd2, dxn, T, ws.dres);
    }

    // ---------------------------------------------------------------- buffers

    /** Activations of one layer saved by the forward for the backward. */
    static final class LayerCache {
        float[] xIn, xn1, rstd1, q, k, v, probs, attn, xMid, xn2, rstd2, gate, up, act;
        final float[][] u = new float[LoraModule.values().length][]; // LoRA shrink outputs [T, r] per module
        final float[][] bT = new float[LoraModule.values().length][]; // B transposed per block, [r, out/bBlocks], per module
    }

    /** A thread's scratch and saved activations, grown to the longest sequence seen. */
    public Workspace newWorkspace() { return new Workspace(); }

    public final class Workspace {
        private int capT = -1, capR = -1;
        LayerCache[] layers;
        float[] x, proj, xnF, rstdF, logits, dx, dres, dattn, dq, dk, dv, dp, dact, dgate, dup;
        final LoraFactor.Scratch scratch = new LoraFactor.Scratch();

        private Workspace() {}

        void ensure(int T, int r) {
            if (T <= capT && r <= capR) return;
            capT = Math.max(T, capT);
            capR = Math.max(Math.max(r, capR), 1);
            int n = capT;
            layers = new LayerCache[c.numLayers()];
            for (int l = 0; l < layers.length; l++) {
                LayerCache lc = new LayerCache();
                lc.xIn = new float[n * d]; lc.xn1 = new float[n * d]; lc.rstd1 = new float[n];
                lc.q = new float[n * qd]; lc.k = new float[n * kvd]; lc.v = new float[n * kvd];
                lc.probs = new float[heads * n * n]; lc.attn = new float[n * qd];
                lc.xMid = new float[n * d]; lc.xn2 = new float[n * d]; lc.rstd2 = new float[n];
                lc.gate = new float[n * ffn]; lc.up = new float[n * ffn]; lc.act = new float[n * ffn];
                for (int m = 0; m < lc.u.length; m++) { lc.u[m] = new float[n * capR]; lc.bT[m] = new float[capR * Math.max(Math.max(qd, ffn), d)]; }
                layers[l] = lc;
            }
            x = new float[n * d]; proj = new float[n * d]; xnF = new float[n * d]; rstdF = new float[n];
            logits = new float[vocab]; dx = new float[n * d]; dres = new float[n * d];
            dattn = new float[n * qd]; dq = new float[n * qd]; dk = new float[n * kvd]; dv = new float[n * kvd];
            dp = new float[n]; dact = new float[n * ffn]; dgate = new float[n * ffn]; dup = new float[n * ffn];
            scratch.ensure(n, capR, Math.max(Math.max(qd, ffn), d));
        }
    }
}
