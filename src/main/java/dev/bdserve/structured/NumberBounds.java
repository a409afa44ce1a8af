package dev.bdserve.structured;

import com.fasterxml.jackson.databind.JsonNode;
import dk.brics.automaton.Automaton;

import java.util.List;

/**
 * The whole-number bounds [lo, hi] implied by a JSON Schema's {@code minimum}, {@code maximum},
 * {@code exclusiveMinimum} and {@code exclusiveMaximum}, and the decimal spellings within them as automata, which
 * {@link JsonSchemaGrammar} writes out as rules: integers exactly; numbers as an integer part within the bounds and
 * a fraction only where the value stays inside, no exponent. Magnitudes are capped at 16 digits, as the grammar's
 * {@code number} is.
 *
 * @param lo  the least whole number admitted
 * @param hi  the greatest whole number admitted
 * @param any whether the schema gave a bound at all (without one, the plain {@code integer} or {@code number} rule
 *            serves)
 */
record NumberBounds(long lo, long hi, boolean any) {
    private static final long NUM_LIMIT = 9_999_999_999_999_999L; // 16 digits
    private static final NumberBounds NONE = new NumberBounds(-NUM_LIMIT, NUM_LIMIT, false);

    /** The bounds of schema {@code s} (at JSON pointer {@code p}); an error if no whole number lies within them. */
    static NumberBounds of(JsonNode s, String p) throws ConstraintException {
        double lo = Double.NEGATIVE_INFINITY, hi = Double.POSITIVE_INFINITY;
        boolean any = false;
        for (String k : List.of("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")) {
            JsonNode v = s.get(k);
            if (v == null) continue;
            if (!v.isNumber()) throw JsonSchemaGrammar.error(k + " must be a number", p + "/" + k);
            any = true;
            double d = v.asDouble();
            switch (k) {
                case "minimum" -> lo = Math.max(lo, Math.ceil(d));
                case "exclusiveMinimum" -> lo = Math.max(lo, Math.floor(d) + 1);
                case "maximum" -> hi = Math.min(hi, Math.floor(d));
                default -> hi = Math.min(hi, Math.ceil(d) - 1);
            }
        }
        long l = (long) Math.max(lo, -NUM_LIMIT), h = (long) Math.min(hi, NUM_LIMIT);
        if (l > h) throw JsonSchemaGrammar.error("no whole number lies within minimum/maximum (the grammar needs one)", p);
        return any ? new NumberBounds(l, h, true) : NONE;
    }

    /** The integers within the bounds. */
    Automaton integers() { return intRange(lo, hi); }

    /**
     * The numbers within the bounds: the integers, and I.F or -M.F with up to 16 fraction digits wherever every such
     * value lies inside (so none is produced below the first or above the last whole number).
     */
    Automaton numbers() {
        Automaton frac = Automaton.makeChar('.').concatenate(Automaton.makeCharRange('0', '9').repeat(1, 16));
        Automaton a = intRange(lo, hi);
        // I.F lies in [I, I + 1) for I >= 0: inside when I + 1 <= hi
        long nlo = Math.max(lo, 0), nhi = hi - 1;
        if (nlo <= nhi) a = a.union(digits(nlo, nhi).concatenate(frac));
        // -M.F lies in (-(M + 1), -M] for M >= 0: inside when -(M + 1) >= lo and -M <= hi
        long mlo = Math.max(-hi, 0), mhi = -lo - 1;
        if (mlo <= mhi) a = a.union(Automaton.makeChar('-').concatenate(digits(mlo, mhi)).concatenate(frac));
        return a;
    }

    /** Decimal integers in [lo, hi], no leading zeros, "-" for negatives (no "-0"). */
    static Automaton intRange(long lo, long hi) {
        Automaton a = Automaton.makeEmpty();
        if (hi >= 0) a = a.union(digits(Math.max(lo, 0), hi));
        if (lo < 0) a = a.union(Automaton.makeChar('-').concatenate(digits(Math.max(-hi, 1), -lo)));
        return a;
    }

    /** Decimal spellings (no leading zeros) of [lo, hi], 0 <= lo <= hi. */
    static Automaton digits(long lo, long hi) {
        Automaton a = Automaton.makeEmpty();
        for (int len = Long.toString(lo).length(); len <= Long.toString(hi).length(); len++) {
            long from = Math.max(lo, len == 1 ? 0 : pow10(len - 1)), to = Math.min(hi, pow10(len) - 1);
            if (from <= to) a = a.union(sameLength(Long.toString(from), Long.toString(to)));
        }
        return a;
    }

    private static long pow10(int n) {
        long v = 1;
        for (int k = 0; k < n; k++) v *= 10;
        return v;
    }

    /** Digit strings of x's length between x and y inclusive (equal lengths). */
    private static Automaton sameLength(String x, String y) {
        if (x.isEmpty()) return Automaton.makeEmptyString();
        char a = x.charAt(0), b = y.charAt(0);
        String xr = x.substring(1), yr = y.substring(1);
        if (a == b) return Automaton.makeChar(a).concatenate(sameLength(xr, yr));
        Automaton out = Automaton.makeChar(a).concatenate(sameLength(xr, "9".repeat(xr.length())));
        if (b - a > 1) out = out.union(Automaton.makeCharRange((char) (a + 1), (char) (b - 1))
                .concatenate(Automaton.makeCharRange('0', '9').repeat(xr.length(), xr.length())));
        return out.union(Automaton.makeChar(b).concatenate(sameLength("0".repeat(yr.length()), yr)));
    }
}
