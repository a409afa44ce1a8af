package dev.bdserve.engine;

/**
 * What one request cost and waited.
 *
 * @param queueSeconds        arrival to first scheduled step
 * @param ttftSeconds         arrival to first token
 * @param interTokenSeconds   gaps between consecutive tokens
 * @param e2eSeconds          arrival to finish
 * @param promptTokens        tokens in
 * @param completionTokens    tokens out
 * @param cachedPromptTokens  prompt tokens served from the prefix cache
 * @param preemptions         times the request was preempted (and recomputed)
 * @param maskSeconds         per sampled token, the time its structured-output mask took; null when unconstrained
 */
public record RequestMetrics(double queueSeconds, double ttftSeconds, double[] interTokenSeconds, double e2eSeconds,
                             int promptTokens, int completionTokens, int cachedPromptTokens, int preemptions, double[] maskSeconds) {
    /** An unconstrained request's. */
    public RequestMetrics(double queueSeconds, double ttftSeconds, double[] interTokenSeconds, double e2eSeconds,
                          int promptTokens, int completionTokens, int cachedPromptTokens, int preemptions) {
        this(queueSeconds, ttftSeconds, interTokenSeconds, e2eSeconds, promptTokens, completionTokens, cachedPromptTokens, preemptions, null);
    }
}
