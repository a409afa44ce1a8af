package dev.bdserve.parallel;

/** A tensor-parallel group can no longer run: a rank failed, stopped answering or was closed. */
public class TpGroupException extends RuntimeException {
    public TpGroupException(String message) { super(message); }
    public TpGroupException(String message, Throwable cause) { super(message, cause); }
}
