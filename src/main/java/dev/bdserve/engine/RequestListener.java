package dev.bdserve.engine;

/**
 * Receives a request's output. Called on the engine's step thread: implementations must be quick and
 * must not block (hand the event to another thread if writing it can stall).
 */
public interface RequestListener {
    /**
     * The prompt's log-probabilities, for a request with {@link SamplingParams#promptLogprobs()} ≥ 0: called once,
     * when the whole prompt has been computed, before the first {@link #onToken}.
     */
    default void onPromptLogprobs(PromptLogprobs logprobs) {}

    /** A token was produced. */
    void onToken(TokenEvent event);

    /** The request finished (normally, at a limit, or cancelled). Called once, after the last onToken. */
    void onFinish(RequestResult result);

    /** The request failed (e.g. the tensor-parallel group lost a rank, or its adapter could not be loaded). Called once instead of onFinish. */
    void onError(EngineException error);
}
