package dev.bdserve.engine;

/**
 * What one sequence produced.
 *
 * @param tokens       generated token ids (without the prompt; EOS excluded)
 * @param text         generated text, cut before a matched stop string
 * @param finishReason "stop" (EOS or a stop string) or "length" (max tokens or the context limit)
 */
public record GenerationResult(int[] tokens, String text, String finishReason) {}
