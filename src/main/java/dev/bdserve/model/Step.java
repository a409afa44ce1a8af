package dev.bdserve.model;

import dev.bdserve.lora.LoraAdapter;

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
 * @param adapters  [T] the adapter of each token's sequence (null entries: base model only), or null for none
 */
public record Step(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows, LoraAdapter[] adapters) {
    public Step {
        if (adapters != null && adapters.length != tokens.length)
            throw new IllegalArgumentException("adapters must have one entry per token");
        Objects.requireNonNull(tokens);
        if (tokens.length == 0) throw new IllegalArgumentException("a step needs at least one token");
        if (positions.length != tokens.length || caches.length != tokens.length)
            throw new IllegalArgumentException("tokens, positions and caches must have the same length");
        for (int r : logitRows)
            if (r < 0 || r >= tokens.length) throw new IllegalArgumentException("logit row " + r + " outside the step");
        for (int p : positions) if (p < 0) throw new IllegalArgumentException("negative position " + p);
    }

    /** A step without adapters. */
    public Step(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows) {
        this(tokens, positions, caches, logitRows, null);
    }

    /** Number of tokens T. */
    public int size() { return tokens.length; }

    /** A step of consecutive tokens of one sequence starting at {@code start}, logits for the last token only. */
    public static Step ofSequence(KvCache cache, int[] tokens, int start, boolean allLogits) {
        return ofSequence(cache, tokens, start, allLogits, null);
    }

    /** As {@link #ofSequence(KvCache, int[], int, boolean)}, every token using {@code adapter} (or none when null). */
    public static Step ofSequence(KvCache cache, int[] tokens, int start, boolean allLogits, LoraAdapter adapter) {
        int n = tokens.length;
        int[] pos = new int[n];
        KvCache[] caches = new KvCache[n];
        for (int i = 0; i < n; i++) { pos[i] = start + i; caches[i] = cache; }
        int[] rows;
        if (allLogits) { rows = new int[n]; for (int i = 0; i < n; i++) rows[i] = i; }
        else rows = new int[]{n - 1};
        LoraAdapter[] ad = null;
        if (adapter != null) { ad = new LoraAdapter[n]; java.util.Arrays.fill(ad, adapter); }
        return new Step(tokens, pos, caches, rows, ad);
    }
}
