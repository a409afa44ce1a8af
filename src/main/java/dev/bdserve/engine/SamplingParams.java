package dev.bdserve.engine;

import java.util.List;

/**
 * How the next token is chosen (the order of vLLM's sampler: temperature, then top-k, top-p and
 * min-p filtering, then a draw). Temperature 0 is greedy.
 *
 * @param temperature ≥ 0; 0 means greedy (argmax)
 * @param topK        keep the k most likely tokens; ≤ 0 means all
 * @param topP        keep the smallest set whose probability reaches p; in (0, 1]
 * @param minP        drop tokens with probability below minP × the top probability; in [0, 1]
 * @param seed        seed of the request's own random stream, or null for a random seed
 * @param stop        stop strings: generation ends before the first occurrence (not included)
 * @param ignoreEos   keep generating after EOS
 * @param presencePenalty  subtracted once from the logit of every token already generated (OpenAI's presence_penalty), in [-2, 2]
 * @param frequencyPenalty subtracted per occurrence from the logit of generated tokens (frequency_penalty), in [-2, 2]
 * @param logprobs    how many top alternatives to report with each sampled token's log-probability; -1: none
 * @param promptLogprobs how many top alternatives to report with the log-probability of each prompt token (vLLM's
 *                    prompt_logprobs, computed from the raw logits of the model and adapter serving the request);
 *                    -1: none. Opt-in because it computes the LM head at every prompt position.
 */
public record SamplingParams(double temperature, int topK, double topP, double minP, Long seed,
                             List<String> stop, boolean ignoreEos, double presencePenalty, double frequencyPenalty,
                             int logprobs, int promptLogprobs) {
    public SamplingParams {
        if (!(presencePenalty >= -2 && presencePenalty <= 2)) throw new IllegalArgumentException("presence_penalty must be in [-2, 2], got " + presencePenalty);
        if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) throw new IllegalArgumentException("frequency_penalty must be in [-2, 2], got " + frequencyPenalty);
        if (logprobs < -1 || logprobs > 20) throw new IllegalArgumentException("logprobs must be between 0 and 20, got " + logprobs);
        if (promptLogprobs < -1 || promptLogprobs > 20) throw new IllegalArgumentException("prompt_logprobs must be between 0 and 20, got " + promptLogprobs);
        if (!(temperature >= 0) || Double.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be ≥ 0, got " + temperature);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min_p must be in [0, 1], got " + minP);
        stop = stop == null ? List.of() : List.copyOf(stop);
        for (String s : stop) if (s.isEmpty()) throw new IllegalArgumentException("stop strings must not be empty");
    }

    /** Without prompt logprobs. */
    public SamplingParams(double temperature, int topK, double topP, double minP, Long seed, List<String> stop, boolean ignoreEos,
                          double presencePenalty, double frequencyPenalty, int logprobs) {
        this(temperature, topK, topP, minP, seed, stop, ignoreEos, presencePenalty, frequencyPenalty, logprobs, -1);
    }

    /** Without penalties or logprobs. */
    public SamplingParams(double temperature, int topK, double topP, double minP, Long seed, List<String> stop, boolean ignoreEos) {
        this(temperature, topK, topP, minP, seed, stop, ignoreEos, 0, 0, -1, -1);
    }

    public static SamplingParams greedy() { return new SamplingParams(0, 0, 1, 0, null, List.of(), false); }

    public boolean isGreedy() { return temperature == 0; }

    public boolean hasPenalties() { return presencePenalty != 0 || frequencyPenalty != 0; }

    public SamplingParams withStop(List<String> s) {
        return new SamplingParams(temperature, topK, topP, minP, seed, s, ignoreEos, presencePenalty, frequencyPenalty, logprobs, promptLogprobs);
    }

    public SamplingParams withSeed(Long s) {
        return new SamplingParams(temperature, topK, topP, minP, s, stop, ignoreEos, presencePenalty, frequencyPenalty, logprobs, promptLogprobs);
    }

    /** The same settings with prompt logprobs: {@code k} alternatives per prompt position, or -1 for none. */
    public SamplingParams withPromptLogprobs(int k) {
        return new SamplingParams(temperature, topK, topP, minP, seed, stop, ignoreEos, presencePenalty, frequencyPenalty, logprobs, k);
    }
}
