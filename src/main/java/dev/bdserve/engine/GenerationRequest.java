package dev.bdserve.engine;

import dev.bdserve.structured.Constraint;

/**
 * One sequence to generate.
 *
 * @param prompt    prompt token ids (including BOS when wanted); at least one token
 * @param maxTokens most new tokens to generate (≥ 1); the context limit also ends generation
 * @param params    sampling settings
 * @param adapterId the id of this sequence's LoRA adapter in the model runner ({@link ModelRunner#addAdapter}), or -1
 * @param constraint what the output must match, or null for free text
 */
public record GenerationRequest(int[] prompt, int maxTokens, SamplingParams params, int adapterId, Constraint constraint) {
    public GenerationRequest {
        if (prompt == null || prompt.length == 0) throw new IllegalArgumentException("the prompt must have at least one token");
        if (maxTokens < 1) throw new IllegalArgumentException("max_tokens must be ≥ 1, got " + maxTokens);
        if (params == null) params = SamplingParams.greedy();
    }

    /** An unconstrained request. */
    public GenerationRequest(int[] prompt, int maxTokens, SamplingParams params, int adapterId) { this(prompt, maxTokens, params, adapterId, null); }

    /** A base-model request. */
    public GenerationRequest(int[] prompt, int maxTokens, SamplingParams params) { this(prompt, maxTokens, params, -1); }
}
