package dev.bdserve.structured;

/**
 * A constraint that cannot be compiled: a bad regex, JSON schema, GBNF grammar or choice list. The message names what
 * is wrong and where ({@link #location}); the HTTP layer answers it with a 400.
 */
public final class ConstraintException extends Exception {
    private final String location;

    /**
     * @param location where in the source: "offset N" / "line L, column C" for regexes and grammars, a JSON pointer
     *                 such as {@code /properties/a/minLength} for schemas; null when nowhere in particular
     */
    public ConstraintException(String message, String location) {
        super(location == null ? message : message + " (at " + location + ")");
        this.location = location;
    }

    /** Where in the source the error is, or null. */
    public String location() { return location; }
}
