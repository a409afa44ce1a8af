package dev.bdserve.engine;

import java.util.Arrays;

/**
 * A request inside the engine: its tokens, KV blocks and progress (the scheduler's part), its output (the
 * {@link OutputProcessor}) and its timings. Owned by the step thread, except {@link #cancel}, which any thread may call.
 */
final class Sequence implements RequestHandle {
    final EngineRequest req;
    final RequestListener listener;
    final AdapterResidency.Entry adapter;     // null for the base model
    final int maxTokens;                      // new tokens at most (max_tokens, or up to the context limit)
    final OutputProcessor output;
    final PromptScoring promptScoring;        // null unless the request asks for its prompt's logprobs
    final IntList tokens;                     // [prompt + generated] token ids
    final IntList table = new IntList(8);     // [blocks] KV block ids, in position order
    private long[] blockHashes = new long[8]; // [full blocks] prefix hash of each full block computed so far
    private int hashedBlocks;
    int computed;                             // positions whose KV is in the cache
    int cachedPrompt;                         // prompt positions served from the prefix cache
    int preempted;                            // times preempted (and recomputed)
    final long arrival = System.nanoTime();
    long firstScheduled, firstToken, lastToken;
    private double[] gaps = new double[16];   // seconds between consecutive tokens
    private int nGaps;
    private final Runnable wake;              // wakes the step loop
    volatile boolean cancelled;
    boolean done;
    /** Its end was reported to the listener: by the step thread, or by {@link Engine#fail} while that thread is stuck. */
    final java.util.concurrent.atomic.AtomicBoolean reported = new java.util.concurrent.atomic.AtomicBoolean();

    Sequence(EngineRequest req, RequestListener listener, AdapterResidency.Entry adapter, int maxTokens, OutputProcessor output, Runnable wake) {
        this.req = req;
        this.maxTokens = maxTokens;
        this.listener = listener;
        this.adapter = adapter;
        this.output = output;
        this.wake = wake;
        this.tokens = new IntList(req.prompt());
        this.promptScoring = req.params().promptLogprobs() >= 0 ? new PromptScoring(req.prompt(), req.params().promptLogprobs()) : null;
    }

    @Override public String id() { return req.id(); }

    @Override public void cancel() {
        cancelled = true;
        wake.run();
    }

    int promptLength() { return req.prompt().length; }

    /** True while some prompt position's logprob is still to be computed. */
    boolean needsPromptRows() { return promptScoring != null && promptScoring.needsRows(); }

    /** The content hash of its adapter ("" for the base model): prefix-cache entries never cross adapters. */
    String adapterHash() { return adapter == null ? "" : adapter.contentHash(); }

    String adapterName() { return adapter == null ? "" : adapter.name; }

    int hashedBlocks() { return hashedBlocks; }

    long blockHash(int i) { return blockHashes[i]; }

    void addBlockHash(long h) {
        if (hashedBlocks == blockHashes.length) blockHashes = Arrays.copyOf(blockHashes, hashedBlocks * 2);
        blockHashes[hashedBlocks++] = h;
    }

    /** Forgets its KV blocks (they were released): everything is computed again. */
    void resetBlocks() {
        table.clear();
        hashedBlocks = 0;
        computed = 0;
    }

    /** Notes a sampled token's time: the first token's, or the gap since the previous one. */
    void tokenAt(long now) {
        if (firstToken == 0) firstToken = now;
        else {
            if (nGaps == gaps.length) gaps = Arrays.copyOf(gaps, nGaps * 2);
            gaps[nGaps++] = (now - lastToken) / 1e9;
        }
        lastToken = now;
    }

    RequestMetrics metrics(long now) {
        return new RequestMetrics(
                firstScheduled == 0 ? (now - arrival) / 1e9 : (firstScheduled - arrival) / 1e9,
                firstToken == 0 ? Double.NaN : (firstToken - arrival) / 1e9, Arrays.copyOf(gaps, nGaps), (now - arrival) / 1e9,
                promptLength(), output.generatedCount(), cachedPrompt, preempted, output.maskSeconds());
    }
}
