package dev.bdserve.lora;

import dev.bdserve.model.ModelFormatException;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A regular expression from an adapter's config (target_modules, rank_pattern, alpha_pattern keys), bounded: at most
 * {@link #MAX_LENGTH} characters, and each match may read its input at most {@link #MAX_STEPS} times. Java's matcher
 * backtracks, so a pattern such as {@code (a+)+b} can take exponential time on a short path; counting the matcher's
 * reads of the input stops it instead of a server thread.
 */
final class BoundedRegex {
    static final int MAX_LENGTH = 1000;
    static final long MAX_STEPS = 1_000_000;

    private final Pattern pattern;
    private final String source, what;

    /** Compiles {@code regex}; {@code what} names it in errors (e.g. "target_modules regex"). Throws ModelFormatException. */
    BoundedRegex(String regex, String what) {
        this.source = regex;
        this.what = what;
        if (regex.length() > MAX_LENGTH)
            throw new ModelFormatException(what + " is " + regex.length() + " characters long; at most " + MAX_LENGTH + " are accepted");
        try {
            this.pattern = Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new ModelFormatException(what + " '" + regex + "' is not a valid pattern: " + e.getDescription());
        }
    }

    String source() { return source; }

    /** Whether the whole input matches; throws ModelFormatException when matching would read it more than MAX_STEPS times. */
    boolean matches(String input) {
        try {
            return pattern.matcher(new Counted(input)).matches();
        } catch (TooCostly e) {
            throw new ModelFormatException(what + " '" + source + "' takes more than " + MAX_STEPS + " steps to match '" + input
                    + "' (catastrophic backtracking); simplify the pattern");
        }
    }

    private static final class TooCostly extends RuntimeException {
        TooCostly() { super(null, null, false, false); }
    }

    /** The input, counting every character the matcher reads. */
    private static final class Counted implements CharSequence {
        private final String s;
        private long steps;

        Counted(String s) { this.s = s; }

        @Override public int length() { return s.length(); }

        @Override public char charAt(int i) {
            if (++steps > MAX_STEPS) throw new TooCostly();
            return s.charAt(i);
        }

        @Override public CharSequence subSequence(int from, int to) { return s.substring(from, to); }

        @Override public String toString() { return s; }
    }
}
