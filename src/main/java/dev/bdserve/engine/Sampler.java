package dev.bdserve.engine;

import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * Draws the next token from one row of logits under {@link SamplingParams}, in vLLM's order: a {@link TokenMask},
 * temperature, top-k, top-p (on the probabilities renormalised after top-k), min-p, then a draw.
 * Stateless; the random stream belongs to the request.
 */
public final class Sampler {
    private Sampler() {}

    /** Index of the largest logit (the first one on ties). */
    public static int argmax(float[] logits, int off, int n) {
        int best = 0;
        float bv = logits[off];
        for (int i = 1; i < n; i++) if (logits[off + i] > bv) { bv = logits[off + i]; best = i; }
        return best;
    }

    /**
     * Samples a token id from logits[off .. off+vocab). Greedy when temperature is 0. Throws
     * {@link IllegalStateException} for a row no token can be drawn from: a NaN or +Inf logit, or every logit −Inf
     * (−Inf alone is a masked token).
     */
    public static int sample(float[] logits, int off, int vocab, SamplingParams p, RandomGenerator rng) {
        return sample(logits, off, vocab, p, rng, null);
    }

    /** As {@link #sample(float[], int, int, SamplingParams, RandomGenerator)}, drawing only ids the mask allows (null: all). */
    public static int sample(float[] logits, int off, int vocab, SamplingParams p, RandomGenerator rng, TokenMask mask) {
        if (mask != null) mask.apply(logits, off, vocab);
        checkRow(logits, off, vocab);
        if (p.isGreedy()) return argmax(logits, off, vocab);
        double[] prob = softmax(logits, off, vocab, p.temperature());   // [vocab]
        int[] cand;                                                     // candidate ids, sorted by prob desc when `sorted`
        boolean sorted = false;
        if (p.topK() > 0 && p.topK() < vocab) {
            cand = sortedByProb(prob, allIds(vocab), p.topK());
            sorted = true;
        } else cand = allIds(vocab);
        if (p.topP() < 1) {
            double mass = 0;
            for (int id : cand) mass += prob[id];
            if (!sorted) {
                // Tokens below eps cannot be inside the nucleus: together they hold < (1 - topP) of the mass.
                double eps = (1 - p.topP()) * mass / (2.0 * cand.length);
                cand = sortedByProb(prob, Arrays.stream(cand).filter(id -> prob[id] >= eps).toArray(), Integer.MAX_VALUE);
                sorted = true;
            }
            double acc = 0;
            int keep = cand.length;
            for (int i = 0; i < cand.length; i++) { acc += prob[cand[i]] / mass; if (acc >= p.topP()) { keep = i + 1; break; } }
            cand = Arrays.copyOf(cand, keep);
        }
        if (p.minP() > 0) {
            double top = 0;
            for (int id : cand) top = Math.max(top, prob[id]);
            double floor = p.minP() * top;
            cand = Arrays.stream(cand).filter(id -> prob[id] >= floor).toArray();
        }
        double total = 0;
        for (int id : cand) total += prob[id];
        double u = rng.nextDouble() * total;
        for (int id : cand) { u -= prob[id]; if (u < 0) return id; }
        return cand[cand.length - 1];
    }

    /** Throws unless the row is finite or −Inf everywhere and finite somewhere. */
    static void checkRow(float[] logits, int off, int vocab) {
        boolean any = false;
        for (int i = 0; i < vocab; i++) {
            float v = logits[off + i];
            if (v > Float.NEGATIVE_INFINITY && v < Float.POSITIVE_INFINITY) any = true;
            else if (v != Float.NEGATIVE_INFINITY)
                throw new IllegalStateException("the model's logits hold " + v + " at token id " + i + " (of " + vocab + ")");
        }
        if (!any) throw new IllegalStateException("every one of the " + vocab + " logits is -Infinity: no token can be sampled");
    }

    /** softmax(logits / temperature) in fp64. */
    static double[] softmax(float[] logits, int off, int vocab, double temperature) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[off + i]);
        double[] prob = new double[vocab];
        double sum = 0;
        for (int i = 0; i < vocab; i++) { prob[i] = Math.exp((logits[off + i] - max) / temperature); sum += prob[i]; }
        for (int i = 0; i < vocab; i++) prob[i] /= sum;
        return prob;
    }

    private static int[] allIds(int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        return ids;
    }

    /** The first {@code limit} of {@code ids} ordered by probability descending (ties: lower id first). */
    private static int[] sortedByProb(double[] prob, int[] ids, int limit) {
        long[] keys = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            // float bits of a non-negative value order like the value; invert to sort descending
            long k = Integer.MAX_VALUE - Float.floatToIntBits((float) prob[ids[i]]);
            keys[i] = (k << 32) | ids[i];
        }
        Arrays.sort(keys);
        int n = Math.min(limit, keys.length);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = (int) keys[i];
        return out;
    }
}
