package dev.bdserve.engine;

/** A submitted request. */
public interface RequestHandle {
    String id();

    /** Cancels the request (e.g. the client went away): it finishes with "abort" and its KV blocks are freed. Idempotent. */
    void cancel();
}
