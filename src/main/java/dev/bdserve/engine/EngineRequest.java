package dev.bdserve.engine;

import dev.bdserve.structured.Constraint;

import java.util.Objects;

/**
 * One generation request as the engine takes it.
 *
 * @param id        caller's id (for logs and metrics)
 * @param prompt    prompt token ids (with BOS when the caller wants it); at least one
 * @param adapter   name of the LoRA adapter, or null for the base model
 * @param params    sampling settings (stop strings, penalties and logprobs included)
 * @param maxTokens most new tokens; -1 means up to the context limit; 0 runs the prompt only (e.g. for its
 *                  prompt logprobs) and finishes with "length" without generating
 * @param constraint what the output must match (a JSON schema, regex, grammar…), or null for free text
 */
public record EngineRequest(String id, int[] prompt, String adapter, SamplingParams params, int maxTokens, Constraint constraint) {
    public EngineRequest {
        Objects.requireNonNull(id, "id");
        if (prompt == null || prompt.length == 0) throw new IllegalArgumentException("the prompt must have at least one token");
        if (maxTokens < -1) throw new IllegalArgumentException("max_tokens must be ≥ 0 (or -1 for up to the context limit), got " + maxTokens);
        if (params == null) params = SamplingParams.greedy();
    }

    /** An unconstrained request. */
    public EngineRequest(String id, int[] prompt, String adapter, SamplingParams params, int maxTokens) {
        this(id, prompt, adapter, params, maxTokens, null);
    }
}
