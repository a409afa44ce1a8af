package dev.bdserve.engine;

/**
 * A request's structured-output constraint allows no next token: the output generated so far cannot be completed
 * within the model's vocabulary. The request ends with an error rather than generating text the constraint forbids.
 */
public final class ConstraintDeadException extends IllegalStateException {
    public ConstraintDeadException(String message) { super(message); }
}
