package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;

/**
 * One sequence to generate.
 *
 * @param prompt    prompt token ids (including BOS when wanted); at least one token
 * @param maxTokens most new tokens to generate (≥ 1); the context limit also ends generation
 * @param params    sampling settings
 * @param adapter   the LoRA adapter of this sequence, or null for the base model
 */
public record GenerationRequest(int[] prompt, int maxTokens, SamplingParams params, LoraAdapter adapter) {
    public GenerationRequest {
        if (prompt == null || prompt.length == 0) throw new IllegalArgumentException("the prompt must have at least one token");
        if (maxTokens < 1) throw new IllegalArgumentException("max_tokens must be ≥ 1, got " + maxTokens);
        if (params == null) params = SamplingParams.greedy();
    }

    /** A base-model request. */
    public GenerationRequest(int[] prompt, int maxTokens, SamplingParams params) { this(prompt, maxTokens, params, null); }
}
