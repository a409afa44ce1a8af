package dev.bdserve.model.hub;

/** A model name or path cannot be resolved to local files; the message is one line that says what to do. */
public class ModelResolutionException extends RuntimeException {
    public ModelResolutionException(String message) { super(message); }
    public ModelResolutionException(String message, Throwable cause) { super(message, cause); }
}
