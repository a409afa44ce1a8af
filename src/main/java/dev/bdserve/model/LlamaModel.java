package dev.bdserve.model;

import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.Communicator;
import dev.bdserve.tensor.AttentionOps;
import dev.bdserve.tensor.Numerics;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.VectorOps;
import dev.bdserve.tensor.Weight;

import java.util.Arrays;

/**
 * One tensor-parallel rank of a Llama decoder (HF {@code modeling_llama.LlamaForCausalLM}), sharded as in
 * spec §1: q/k/v and gate/up column-parallel, o and down row-parallel with one all-reduce each, a
 * vocab-parallel LM head whose logits are gathered. A single rank is the same code with N = 1 and a
 * communicator whose collectives do nothing.
 *
 * <p>The model holds only weights; per-request state (KV caches) belongs to the caller, the scratch
 * buffers of a step live in a {@link Workspace} owned by the thread that drives the model, and adapters come with
 * each step as its {@link AdapterUpdates}.
 */
public final class LlamaModel {
    private final LlamaConfig cfg;
    private final LlamaWeights w;
    private final Communicator comm;
    private final Parallel par;
    private final Rope rope;      // RoPE of the global layers
    private final Rope localRope; // RoPE of the windowed layers (Gemma 3: a base of their own), else the same

    private final int hidden;     // d_model
    private final int headDim;    // per-head width
    private final int heads;      // query heads on this rank
    private final int kvHeads;    // KV heads on this rank
    private final int qWidth;     // heads × headDim
    private final int kvWidth;    // kvHeads × headDim
    private final int qkvWidth;   // qWidth + 2·kvWidth (fused projection output)
    private final int ffn;        // local FFN width
    private final int groupSize;  // query heads per KV head
    private final int firstHead;  // global index of this rank's first query head
    private final int firstKvHead;// global index of this rank's first KV head
    private final float attnScale;// 1 / sqrt(headDim), or 1 / sqrt(query_pre_attn_scalar) (Gemma)
    private final DecoderVariant variant;

    public LlamaModel(LlamaConfig cfg, LlamaWeights weights, Communicator comm, Parallel par) {
        this.cfg = cfg;
        this.w = weights;
        this.comm = comm;
        this.par = par;
        this.rope = new Rope(cfg);
        this.localRope = cfg.variant().localRopeTheta() > 0 ? new Rope(cfg, true) : rope;
        Shard s = weights.shard();
        if (comm.size() != s.size() || comm.rank() != s.rank())
            throw new IllegalArgumentException("communicator rank " + comm.rank() + "/" + comm.size() + " does not match shard " + s);
        this.hidden = cfg.hiddenSize();
        this.headDim = cfg.headDim();
        this.heads = s.localHeads(cfg);
        this.kvHeads = s.localKvHeads(cfg);
        this.qWidth = heads * headDim;
        this.kvWidth = kvHeads * headDim;
        this.qkvWidth = qWidth + 2 * kvWidth;
        this.ffn = s.localFfn(cfg);
        this.groupSize = cfg.numHeads() / cfg.numKvHeads();
        this.firstHead = s.firstHead(cfg);
        this.firstKvHead = s.firstKvHead(cfg);
        float qpas = cfg.variant().queryPreAttnScalar();
        this.attnScale = (float) (1.0 / Math.sqrt(qpas > 0 ? qpas : headDim));
        this.variant = cfg.variant();
    }

    /** Loads one rank of a model from a checkpoint. */
    public static LlamaModel load(TensorSource src, Communicator comm, Parallel par) {
        return new LlamaModel(src.config(), LlamaWeights.load(src, new Shard(comm.rank(), comm.size())), comm, par);
    }

    public LlamaConfig config() { return cfg; }
    public LlamaWeights weights() { return w; }
    public Parallel parallel() { return par; }

    public Communicator communicator() { return comm; }

    /** A new, empty standalone KV cache (its own growing pool) for one sequence on this rank. */
    public KvCache newCache(int initialCapacity) {
        return KvCache.standalone(cfg.numLayers(), kvWidth, 16, cfg.maxPositions(), initialCapacity);
    }

    /** A KV block pool for this rank's KV heads. */
    public KvPool newPool(int blockSize, int numBlocks) { return newPool(blockSize, numBlocks, KvDtype.F32); }

    /** A KV block pool for this rank's KV heads, storing {@code dtype}. */
    public KvPool newPool(int blockSize, int numBlocks, KvDtype dtype) { return new KvPool(cfg.numLayers(), kvWidth, blockSize, numBlocks, dtype); }

    /** Bytes of one fp32 KV block of {@code blockSize} positions on this rank. */
    public long kvBlockBytes(int blockSize) { return kvBlockBytes(blockSize, KvDtype.F32); }

    /** Bytes of one KV block of {@code blockSize} positions on this rank. */
    public long kvBlockBytes(int blockSize, KvDtype dtype) { return KvPool.blockBytes(cfg.numLayers(), kvWidth, blockSize, dtype); }

    /** A workspace for steps driven by one thread. */
    public Workspace newWorkspace() { return new Workspace(); }

    /**
     * Runs one step and writes the next-token logits of {@code step.logitRows()} into
     * {@code logits} [logitRows.length, vocab]. K/V of every token are appended to their caches.
     */
    public void forward(Step step, Workspace ws, float[] logits) {
        int T = step.size();
        int L = step.logitRows().length;
        if (logits.length < (long) L * cfg.vocabSize()) throw new IllegalArgumentException("logits buffer too small");
        ws.ensure(T, L);
        prepareCaches(step);
        ropeAngles(step, ws);
        embed(step.tokens(), ws.x);
        for (int l = 0; l < w.layers().length; l++) {
            attentionBlock(l, step, ws);
            mlpBlock(l, T, step.adapters(), ws);
        }
        lmHead(step, ws, logits);
    }

    private void prepareCaches(Step step) {
        for (int t = 0; t < step.size(); t++) {
            int p = step.positions()[t];
            if (p >= cfg.maxPositions())
                throw new IllegalArgumentException("position " + p + " exceeds the context limit of " + cfg.maxPositions());
            step.caches()[t].ensureCapacity(p + 1);
        }
    }

    /** x[t, :] = embed_tokens[tokens[t], :], times √hidden for Gemma (HF Gemma2Model's normalizer, in fp32). */
    private void embed(int[] tokens, float[] x) {
        Weight e = w.embed();
        float scale = (float) Math.sqrt(hidden);
        for (int t = 0; t < tokens.length; t++) {
            int id = tokens[t];
            if (id < 0 || id >= cfg.vocabSize()) throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + cfg.vocabSize());
            e.row(id, x, t * hidden);
            if (variant.embedScale()) VectorOps.scale(x, t * hidden, scale, hidden);
        }
    }

    private void ropeAngles(Step step, Workspace ws) {
        int half = headDim / 2;
        for (int t = 0; t < step.size(); t++) {
            rope.angles(step.positions()[t], ws.cos, ws.sin, t * half);
            if (localRope != rope) localRope.angles(step.positions()[t], ws.cosLocal, ws.sinLocal, t * half);
        }
    }

    /**
     * x += o_proj(attention(rope(q), rope(k), v)) for every token (LlamaAttention.forward); Gemma normalises the
     * o_proj output before the add (Gemma2DecoderLayer's post_attention_layernorm).
     */
    private void attentionBlock(int l, Step step, Workspace ws) {
        LlamaWeights.Layer lw = w.layers()[l];
        int T = step.size();
        boolean local = localRope != rope && variant.windowed(l);
        Rope r = local ? localRope : rope;
        float[] cos = local ? ws.cosLocal : ws.cos, sin = local ? ws.sinLocal : ws.sin;
        rmsnormRows(ws.x, lw.attnNorm(), ws.xn, T);
        lw.wqkv().matmul(ws.xn, T, ws.qkv, par);                         // qkv [T, qkvWidth]
        step.adapters().addTo(l, ProjectionGroup.QKV, ws.xn, hidden, ws.qkv, qkvWidth);
        int half = headDim / 2;
        for (int t = 0; t < T; t++) {
            int base = t * qkvWidth;
            if (lw.bqkv() != null) VectorOps.add(ws.qkv, base, lw.bqkv(), 0, qkvWidth);   // + [q; k; v] bias (Qwen2)
            if (lw.qNorm() != null)                                         // Qwen3Attention: q_norm / k_norm per head, before RoPE
                for (int h = 0; h < heads + kvHeads; h++) {
                    int off = base + h * headDim;
                    VectorOps.rmsnorm(ws.qkv, off, ws.qkv, off, h < heads ? lw.qNorm() : lw.kNorm(), cfg.rmsNormEps(), headDim);
                }
            for (int h = 0; h < heads + kvHeads; h++)                       // q heads then k heads
                r.rotate(ws.qkv, base + h * headDim, cos, sin, t * half);
            KvCache c = step.caches()[t];
            int slot = c.slot(step.positions()[t]), bs = c.pool().blockSize();
            // keys block-transposed: [kvWidth][bs] per block; values head-major: [kvHeads][bs][headDim] per block
            int kBase = (slot / bs) * bs * kvWidth + slot % bs, vBase = (slot / bs) * bs * kvWidth + (slot % bs) * headDim;
            if (c.pool().dtype() == KvDtype.BF16) {                         // rounded to nearest even
                short[] keys = c.pool().keysBf16(l), values = c.pool().valuesBf16(l);
                for (int e = 0; e < kvWidth; e++) keys[kBase + e * bs] = Numerics.floatToBf16(ws.qkv[base + qWidth + e]);
                for (int g = 0; g < kvHeads; g++)
                    for (int d = 0; d < headDim; d++)
                        values[vBase + g * bs * headDim + d] = Numerics.floatToBf16(ws.qkv[base + qWidth + kvWidth + g * headDim + d]);
            } else {
                float[] keys = c.pool().keys(l), values = c.pool().values(l);
                for (int e = 0; e < kvWidth; e++) keys[kBase + e * bs] = ws.qkv[base + qWidth + e];
                for (int g = 0; g < kvHeads; g++)
                    System.arraycopy(ws.qkv, base + qWidth + kvWidth + g * headDim, values, vBase + g * bs * headDim, headDim);
            }
        }
        for (int t = 0; t < T; t++) step.caches()[t].markFilled(step.positions()[t] + 1);
        attention(l, step, ws);                                           // attn [T, qWidth]
        lw.wo().matmul(ws.attn, T, ws.proj, par);                        // proj [T, hidden], partial under TP
        step.adapters().addTo(l, ProjectionGroup.O, ws.attn, qWidth, ws.proj, hidden);
        comm.allReduceSum(ws.proj, 0, T * hidden, Collective.ATTN_OUT);
        if (lw.attnPostNorm() != null) rmsnormRows(ws.proj, lw.attnPostNorm(), ws.proj, T);
        VectorOps.add(ws.x, 0, ws.proj, 0, T * hidden);
    }

    /**
     * Causal grouped-query attention of each (token, local head) over its own sequence's cache. Work items are
     * (token, group of heads): one group per token when the step has enough tokens to keep every thread busy,
     * more (down to one head each) when it has fewer, as in single-sequence decode.
     */
    private void attention(int l, Step step, Workspace ws) {
        int T = step.size();
        int maxLen = 0;
        for (int p : step.positions()) maxLen = Math.max(maxLen, p + 1);
        int groups = Math.min(heads, Math.max(1, (2 * par.parallelism() + T - 1) / T));
        int perGroup = (heads + groups - 1) / groups;
        final int stride = maxLen + AttentionOps.SCORE_PAD;               // one row of scores per head of a group
        final int nGroups = (heads + perGroup - 1) / perGroup;
        par.forRange(T * nGroups, 1, (from, to) -> {
            float[] scores = new float[perGroup * stride];                // [perGroup][stride]
            for (int i = from; i < to; i++) {
                int t = i / nGroups, h0 = (i % nGroups) * perGroup;
                attendHeads(l, variant.windowed(l) ? variant.slidingWindow() : 0, step, ws, t, h0, Math.min(heads, h0 + perGroup), scores, stride);
            }
        });
    }

    /**
     * softmax(q·Kᵀ/√d)·V of query heads [h0, h1) of token t over positions 0..pos of its sequence (eager
     * attention of HF modeling_llama), or over the last {@code window} of them (pos − window, pos] with a sliding
     * window (HF modeling_mistral; Gemma's windowed layers), the scores soft-capped first where the variant says
     * (Gemma 2: c·tanh(s/c)). The cache is walked block by block, and inside a block head by head:
     * a block's keys (then values) for all local KV heads are one contiguous region of {@link KvPool}, read
     * front to back. Keys are block-transposed, values head-major (see KvPool).
     */
    private void attendHeads(int l, int window, Step step, Workspace ws, int t, int h0, int h1, float[] scores, int stride) {
        KvCache c = step.caches()[t];
        boolean bf16 = c.pool().dtype() == KvDtype.BF16;
        float[] k = bf16 ? null : c.pool().keys(l), v = bf16 ? null : c.pool().values(l);
        short[] kb = bf16 ? c.pool().keysBf16(l) : null, vb = bf16 ? c.pool().valuesBf16(l) : null;
        int[] table = c.table();
        int bs = c.pool().blockSize(), blockFloats = bs * kvWidth;
        int n = step.positions()[t] + 1, blocks = (n + bs - 1) / bs;
        // sliding window (HF masking_utils.sliding_window_overlay: key j is seen by query p iff j > p − window):
        // positions [j0, n); the blocks before j0's are skipped, j0's own block is scored whole and cut at softmax
        int j0 = window > 0 ? Math.max(0, n - window) : 0, b0 = j0 / bs;
        for (int b = b0, j = b0 * bs; b < blocks; b++, j += bs) {         // scores[h][j] = q_h·k_j / √d
            int base = table[b] * blockFloats, next = table[Math.min(b + 1, blocks - 1)] * blockFloats, m = Math.min(bs, n - j);
            for (int h = h0; h < h1; h++) {
                int run = kvRun(h, bs);
                if (bf16) AttentionOps.scoresTransposedBf16(ws.qkv, t * qkvWidth + h * headDim, kb, base + run, bs, m, headDim, attnScale,
                        scores, (h - h0) * stride + j, next + run);
                else AttentionOps.scoresTransposed(ws.qkv, t * qkvWidth + h * headDim, k, base + run, bs, m, headDim, attnScale,
                        scores, (h - h0) * stride + j, next + run);
            }
        }
        for (int h = h0; h < h1; h++) {
            if (variant.attnSoftcap() > 0) VectorOps.softcap(scores, (h - h0) * stride + j0, variant.attnSoftcap(), n - j0);
            VectorOps.softmaxInPlace(scores, (h - h0) * stride + j0, n - j0);
            int out = t * qWidth + h * headDim;
            Arrays.fill(ws.attn, out, out + headDim, 0f);
        }
        for (int b = b0, j = b0 * bs; b < blocks; b++, j += bs) {         // attn_h = Σ_{j ≥ j0} p_hj · v_j
            int base = table[b] * blockFloats, next = table[Math.min(b + 1, blocks - 1)] * blockFloats, m = Math.min(bs, n - j);
            int skip = Math.max(0, j0 - j);                               // positions of j0's block before the window
            for (int h = h0; h < h1; h++) {
                int run = kvRun(h, bs);
                if (bf16) AttentionOps.weightedSumBf16(scores, (h - h0) * stride + j + skip, m - skip, vb, base + run + skip * headDim, headDim,
                        headDim, ws.attn, t * qWidth + h * headDim, next + run);
                else AttentionOps.weightedSum(scores, (h - h0) * stride + j + skip, m - skip, v, base + run + skip * headDim, headDim, headDim,
                        ws.attn, t * qWidth + h * headDim, next + run);
            }
        }
    }

    /** Offset inside a KV block of the run (keys or values) of the local KV head that query head h reads. */
    private int kvRun(int h, int bs) { return ((firstHead + h) / groupSize - firstKvHead) * headDim * bs; }

    /**
     * x += down_proj(act(gate_proj(x̂)) · up_proj(x̂)) (LlamaMLP.forward), act SiLU or Gemma's tanh GELU; Gemma
     * normalises the down_proj output before the add (post_feedforward_layernorm).
     */
    private void mlpBlock(int l, int T, AdapterUpdates adapters, Workspace ws) {
        LlamaWeights.Layer lw = w.layers()[l];
        rmsnormRows(ws.x, lw.ffnNorm(), ws.xn, T);
        lw.wGateUp().matmul(ws.xn, T, ws.gateUp, par);                   // gateUp [T, 2·ffn]
        adapters.addTo(l, ProjectionGroup.GATE_UP, ws.xn, hidden, ws.gateUp, 2 * ffn);
        boolean gelu = variant.activation() == DecoderVariant.Activation.GELU_TANH;
        for (int t = 0; t < T; t++) {
            if (gelu) VectorOps.geluTanhMul(ws.gateUp, t * 2 * ffn, ws.gateUp, t * 2 * ffn + ffn, ws.act, t * ffn, ffn);
            else VectorOps.siluMul(ws.gateUp, t * 2 * ffn, ws.gateUp, t * 2 * ffn + ffn, ws.act, t * ffn, ffn);
        }
        lw.wDown().matmul(ws.act, T, ws.proj, par);                      // proj [T, hidden], partial under TP
        adapters.addTo(l, ProjectionGroup.DOWN, ws.act, ffn, ws.proj, hidden);
        comm.allReduceSum(ws.proj, 0, T * hidden, Collective.MLP_OUT);
        if (lw.ffnPostNorm() != null) rmsnormRows(ws.proj, lw.ffnPostNorm(), ws.proj, T);
        VectorOps.add(ws.x, 0, ws.proj, 0, T * hidden);
    }

    /** logits = lm_head(norm(x)) for the requested rows, gathered over the vocab-parallel shards, soft-capped for Gemma 2. */
    private void lmHead(Step step, Workspace ws, float[] logits) {
        projectLogits(step, ws, logits);
        int n = step.logitRows().length * cfg.vocabSize();
        if (variant.finalSoftcap() > 0 && n > 0) VectorOps.softcap(logits, 0, variant.finalSoftcap(), n);
    }

    private void projectLogits(Step step, Workspace ws, float[] logits) {
        int[] rows = step.logitRows();
        int L = rows.length;
        if (L == 0) return;                                               // a mid-prompt chunk: no logits (same on every rank)
        for (int i = 0; i < L; i++)
            VectorOps.rmsnorm(ws.xn, i * hidden, ws.x, rows[i] * hidden, w.finalNorm(), cfg.rmsNormEps(), hidden);
        Shard s = w.shard();
        int vocab = cfg.vocabSize();
        if (s.size() == 1) {
            w.lmHead().matmul(ws.xn, L, logits, par);
            return;
        }
        int per = s.vocabPerRank(cfg), local = s.localVocab(cfg);
        w.lmHead().matmul(ws.xn, L, ws.localLogits, par);                // [L, local]
        float[] send = ws.sendLogits;                                     // [L, per] padded
        for (int i = 0; i < L; i++) {
            System.arraycopy(ws.localLogits, i * local, send, i * per, local);
            Arrays.fill(send, i * per + local, (i + 1) * per, 0f);
        }
        comm.allGather(send, 0, L * per, ws.gathered, 0, Collective.LOGITS);                // [N, L, per]
        for (int r = 0; r < s.size(); r++) {
            int v0 = r * per, n = Math.min(vocab, v0 + per) - v0;
            if (n <= 0) continue;
            for (int i = 0; i < L; i++) System.arraycopy(ws.gathered, (r * L + i) * per, logits, i * vocab + v0, n);
        }
    }

    private void rmsnormRows(float[] x, float[] weight, float[] out, int T) {
        for (int t = 0; t < T; t++) VectorOps.rmsnorm(out, t * hidden, x, t * hidden, weight, cfg.rmsNormEps(), hidden);
    }

    /** Scratch buffers of the steps one thread drives, grown to the largest step seen. */
    public final class Workspace {
        private int tokens = -1, logitRows = -1;
        float[] x;        // [T, hidden] residual stream
        float[] xn;       // [max(T, L), hidden] normalised input of a block
        float[] qkv;      // [T, qkvWidth]
        float[] attn;     // [T, qWidth] attention output (local heads)
        float[] proj;     // [T, hidden] o_proj / down_proj output
        float[] gateUp;   // [T, 2·ffn]
        float[] act;      // [T, ffn] silu(gate)·up
        float[] cos, sin; // [T, headDim/2] RoPE angles of each token
        float[] cosLocal, sinLocal; // [T, headDim/2] the same with the windowed layers' base (Gemma 3), else unused
        float[] localLogits, sendLogits, gathered; // vocab-parallel LM head buffers (TP only)

        private Workspace() {}

        void ensure(int T, int L) {
            if (T <= tokens && L <= logitRows) return;
            tokens = Math.max(T, tokens);
            logitRows = Math.max(L, logitRows);
            int n = tokens;
            x = new float[n * hidden];
            xn = new float[Math.max(n, logitRows) * hidden];
            qkv = new float[n * qkvWidth];
            attn = new float[n * qWidth];
            proj = new float[n * hidden];
            gateUp = new float[n * 2 * ffn];
            act = new float[n * ffn];
            cos = new float[n * headDim / 2];
            sin = new float[n * headDim / 2];
            if (localRope != rope) {
                cosLocal = new float[n * headDim / 2];
                sinLocal = new float[n * headDim / 2];
            }
            Shard s = w.shard();
            if (s.size() > 1) {
                int per = s.vocabPerRank(cfg);
                localLogits = new float[logitRows * Math.max(1, s.localVocab(cfg))];
                sendLogits = new float[logitRows * per];
                gathered = new float[s.size() * logitRows * per];
            }
        }
    }
}
