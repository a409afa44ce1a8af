package dev.bdserve.engine;

/**
 * A request the engine refuses or cannot complete. {@link #status()} is the HTTP status a server
 * should answer with (vLLM's conventions): 400 bad input, 404 unknown adapter, 429 queue full,
 * 503 engine unavailable (e.g. a lost tensor-parallel rank, or shutting down).
 */
public class EngineException extends RuntimeException {
    private final int status;

    public EngineException(int status, String message) {
        super(message);
        this.status = status;
    }

    public EngineException(int status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    public int status() { return status; }
}
