package dev.bdserve.engine;

import java.util.ArrayList;
import java.util.List;

/** Log-probabilities from one row of logits: the normaliser and the most likely tokens. */
public final class Logprobs {
    private Logprobs() {}

    /** log Σ exp(logits[off .. off+n)), in fp64; a log-probability is then logit − this. */
    public static double logSumExp(float[] logits, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        return max + Math.log(sum);
    }

    /**
     * The k largest of logits[off .. off+n) as log-probabilities (logit − lse), largest first, the lower id first on
     * ties. One pass keeping a sorted list of k (k ≤ 20), instead of sorting the vocabulary.
     */
    public static List<TokenEvent.TopLogprob> top(float[] logits, int off, int n, int k, double lse) {
        k = Math.min(k, n);
        if (k <= 0) return List.of();
        int[] ids = new int[k];                            // [k] kept ids, by logit descending
        int kept = 0;
        for (int i = 0; i < n; i++) {
            float v = logits[off + i];
            if (kept == k && v <= logits[off + ids[k - 1]]) continue;   // not above the smallest kept one (ties keep the lower id)
            int at = kept == k ? k - 1 : kept++;
            while (at > 0 && v > logits[off + ids[at - 1]]) { ids[at] = ids[at - 1]; at--; }
            ids[at] = i;
        }
        List<TokenEvent.TopLogprob> out = new ArrayList<>(k);
        for (int id : ids) out.add(new TokenEvent.TopLogprob(id, (float) (logits[off + id] - lse)));
        return out;
    }
}
