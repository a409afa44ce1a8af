package dev.bdserve.structured;

import dk.brics.automaton.Automaton;
import dk.brics.automaton.State;
import dk.brics.automaton.Transition;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@code dk.brics.automaton} automaton written out as right-linear GBNF rules, one rule per state, so that the
 * languages {@link Regex} and {@link JsonSchemaGrammar} build as automata (regexes, patterns and formats, property
 * names, number ranges) run on the grammar runtime. Characters are UTF-16 units as brics has them, the stand-in
 * {@link Regex#SUPP} written as the class of all code points above U+FFFF.
 */
final class AutomatonGbnf {
    private AutomatonGbnf() {}

    /**
     * Writes {@code a}'s states as rules {@code prefix-N ::= [class] prefix-M | ... | ""} (the empty alternative where
     * the state accepts) and returns the start rule's name. With {@code json}, the characters are written as they
     * are spelled inside a JSON string: {@code "} and {@code \} and control characters escaped (\n \r \t \b \f or
     * \\u00XX), so the rules match a JSON string's contents.
     */
    static String rules(Automaton a, String prefix, boolean json, StringBuilder out, String what) throws ConstraintException {
        a.minimize();
        if (a.isEmpty()) throw new ConstraintException("no string satisfies " + what, null);
        Map<State, Integer> ids = new HashMap<>();
        List<State> order = new ArrayList<>();
        ids.put(a.getInitialState(), 0);
        order.add(a.getInitialState());
        for (int k = 0; k < order.size(); k++)
            for (Transition t : order.get(k).getTransitions())
                if (ids.putIfAbsent(t.getDest(), order.size()) == null) order.add(t.getDest());
        for (int k = 0; k < order.size(); k++) {
            State st = order.get(k);
            List<String> alts = new ArrayList<>();
            for (Transition t : st.getSortedTransitions(false)) {
                String dest = prefix + "-" + ids.get(t.getDest());
                for (String piece : pieces(t.getMin(), t.getMax(), json)) alts.add(piece + " " + dest);
            }
            if (st.isAccept()) alts.add("\"\"");
            if (alts.isEmpty()) alts.add("[^\\x00-\\U0010FFFF]"); // unreachable: minimized automata have no dead states
            out.append(prefix).append('-').append(k).append(" ::= ").append(String.join(" | ", alts)).append('\n');
        }
        return prefix + "-0";
    }

    /** GBNF for the characters lo..hi (stand-in: all supplementary code points), as classes and escape literals. */
    private static List<String> pieces(char lo, char hi, boolean json) {
        List<String> out = new ArrayList<>();
        List<int[]> plain = new ArrayList<>();
        for (int c = lo; c <= hi; c++) {
            if (c >= 0xD800 && c <= 0xDFFF) {
                if (c == Regex.SUPP) plain.add(new int[]{0x10000, Gbnf.MAX_CP});
                if (hi > 0xDFFF) c = 0xDFFF; else break;
                continue;
            }
            if (json && (c < 0x20 || c == '"' || c == '\\')) {
                out.add(Constraint.literal(jsonEscape((char) c)));
                continue;
            }
            int end = c;
            while (end < hi && end + 1 < 0xD800 == end < 0xD800 && !(json && (end + 1 < 0x20 || end + 1 == '"' || end + 1 == '\\'))) end++;
            plain.add(new int[]{c, end});
            c = end;
        }
        if (!plain.isEmpty()) {
            StringBuilder b = new StringBuilder("[");
            for (int[] r : plain) {
                b.append(hexEscape(r[0]));
                if (r[1] > r[0]) b.append('-').append(hexEscape(r[1]));
            }
            out.add(b.append(']').toString());
        }
        return out;
    }

    private static String hexEscape(int cp) {
        return cp > 0xFFFF ? String.format("\\U%08X", cp) : String.format("\\u%04X", cp);
    }

    /** How JSON writes character {@code c} inside a string when it must be escaped. */
    static String jsonEscape(char c) {
        return switch (c) {
            case '"' -> "\\\"";
            case '\\' -> "\\\\";
            case '\n' -> "\\n";
            case '\r' -> "\\r";
            case '\t' -> "\\t";
            case '\b' -> "\\b";
            case '\f' -> "\\f";
            default -> String.format("\\u%04x", (int) c);
        };
    }
}
