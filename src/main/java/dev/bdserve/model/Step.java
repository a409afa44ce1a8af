package dev.bdserve.model;

import java.util.Objects;

/**
 * The tokens one forward step processes: any mix of prompt chunks and decode tokens from any number
 * of sequences. Token t of the step is {@code tokens[t]} at {@code positions[t]} of the sequence whose
 * cache is {@code caches[t]}; it attends to positions 0..positions[t] of that cache.
 *
 * @param tokens    [T] token ids
 * @param positions [T] positions within their sequences
 * @param caches    [T] the KV cache of each token's sequence (tokens of one sequence share one object)
 * @param logitRows indices into [0, T) of the tokens whose next-token logits are wanted, in output order
 * @param adapters  the adapter updates of the step's tokens ({@link AdapterUpdates#NONE} for none)
 */
public record Step(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows, AdapterUpdates adapters) {
    public Step {
        Objects.requireNonNull(tokens);
        Objects.requireNonNull(adapters);
        if (tokens.length == 0) throw new IllegalArgumentException("a step needs at least one token");
        if (positions.length != tokens.length || caches.length != tokens.length)
            throw new IllegalArgumentException("tokens, positions and caches must have the same length");
        for (int r : logitRows)
            if (r < 0 || r >= tokens.length) throw new IllegalArgumentException("logit row " + r + " outside the step");
        for (int p : positions) if (p < 0) throw new IllegalArgumentException("negative position " + p);
    }

    /** A step without adapters. */
    public Step(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows) {
        this(tokens, positions, caches, logitRows, AdapterUpdates.NONE);
    }

    /** Number of tokens T. */
    public int size() { return tokens.length; }

    /** A step of consecutive tokens of one sequence starting at {@code start}, logits for the last token only. */
    public static Step ofSequence(KvCache cache, int[] tokens, int start, boolean allLogits) {
        return ofSequence(cache, tokens, start, allLogits, AdapterUpdates.NONE);
    }

    /** As {@link #ofSequence(KvCache, int[], int, boolean)}, with the given adapter updates for its tokens. */
    public static Step ofSequence(KvCache cache, int[] tokens, int start, boolean allLogits, AdapterUpdates adapters) {
        int n = tokens.length;
        int[] pos = new int[n];
        KvCache[] caches = new KvCache[n];
        for (int i = 0; i < n; i++) { pos[i] = start + i; caches[i] = cache; }
        int[] rows;
        if (allLogits) { rows = new int[n]; for (int i = 0; i < n; i++) rows[i] = i; }
        else rows = new int[]{n - 1};
        return new Step(tokens, pos, caches, rows, adapters);
    }
}
