package dev.bdserve.engine;

/**
 * How a request ended.
 *
 * @param id           the request id
 * @param text         all generated text (cut before a matched stop string)
 * @param tokens       generated token ids (EOS excluded)
 * @param finishReason "stop" (EOS or stop string), "length" (max tokens or context limit) or "abort" (cancelled)
 * @param metrics      timings and counts
 */
public record RequestResult(String id, String text, int[] tokens, String finishReason, RequestMetrics metrics) {}
