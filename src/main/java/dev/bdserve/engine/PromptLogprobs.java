package dev.bdserve.engine;

import java.util.List;
import java.util.Objects;

/**
 * The log-probability of every prompt token under the model (and adapter) serving the request, as vLLM's
 * prompt_logprobs: raw logits, before penalties and temperature.
 *
 * @param tokens   [P] the prompt token ids
 * @param logprobs [P] logprobs[i] = log p(tokens[i] | tokens[0..i)); NaN at i = 0, which nothing precedes
 * @param top      [P] the requested number of most likely tokens at each position, most likely first (ties: lower id
 *                 first); empty at i = 0
 */
public record PromptLogprobs(int[] tokens, float[] logprobs, List<List<TokenEvent.TopLogprob>> top) {
    public PromptLogprobs {
        Objects.requireNonNull(tokens, "tokens");
        if (logprobs.length != tokens.length || top.size() != tokens.length)
            throw new IllegalArgumentException("tokens, logprobs and top must have one entry per prompt token");
        top = List.copyOf(top);
    }

    public int size() { return tokens.length; }
}
