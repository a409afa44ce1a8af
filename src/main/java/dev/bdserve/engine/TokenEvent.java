package dev.bdserve.engine;

import java.util.List;

/**
 * One generated token as it is produced, or (token −1) the text held back until the request finished
 * (the tail of a stop-string check or of a UTF-8 character), sent just before onFinish.
 *
 * @param token   its id, or −1 for a text-only flush
 * @param text    the text it completes (may be empty while a UTF-8 character or a possible stop string is held back)
 * @param logprob log-probability of the token under the sampling distribution's logits (NaN when not requested)
 * @param top     the most likely alternatives with their log-probabilities (empty when not requested)
 */
public record TokenEvent(int token, String text, float logprob, List<TopLogprob> top) {
    /** A candidate token and its log-probability. */
    public record TopLogprob(int token, float logprob) {}
}
