package dev.bdserve.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A request's prompt log-probabilities (vLLM's prompt_logprobs), filled as its prompt chunks run: the logits at
 * prompt position p give the log-probability of prompt token p + 1. Raw logits: no penalties, no temperature.
 */
final class PromptScoring {
    private final int[] prompt;
    private final int topK;
    private final float[] logprobs;                                  // [P] NaN at 0, which nothing precedes
    private final List<List<TokenEvent.TopLogprob>> top;             // [P] the most likely tokens at each position
    private int next = 1;                                            // first prompt index not known yet
    private boolean sent;

    PromptScoring(int[] prompt, int topK) {
        this.prompt = prompt;
        this.topK = topK;
        this.logprobs = new float[prompt.length];
        Arrays.fill(logprobs, Float.NaN);
        this.top = new ArrayList<>(Collections.nCopies(prompt.length, List.<TokenEvent.TopLogprob>of()));
    }

    /** True while some prompt token's logprob is still to be computed. */
    boolean needsRows() { return next < prompt.length; }

    /** Whether the logits at prompt position p are wanted (not known from before a preemption). */
    boolean wantsRowAt(int p) { return p + 1 < prompt.length && p + 1 >= next; }

    /** Records log p(prompt[target] | prompt[<target]) from the logits row at off. */
    void record(int target, float[] logits, int off, int vocab) {
        double lse = Logprobs.logSumExp(logits, off, vocab);
        logprobs[target] = (float) (logits[off + prompt[target]] - lse);
        top.set(target, Logprobs.top(logits, off, vocab, topK, lse));
        next = target + 1;
    }

    /** The whole prompt's logprobs, once, as soon as {@code computed} positions cover the prompt; else null. */
    PromptLogprobs takeIfComplete(int computed) {
        if (sent || computed < prompt.length) return null;
        sent = true;
        return new PromptLogprobs(prompt.clone(), logprobs.clone(), top);
    }
}
