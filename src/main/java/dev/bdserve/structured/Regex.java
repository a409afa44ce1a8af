package dev.bdserve.structured;

import dk.brics.automaton.Automaton;

import java.util.ArrayList;
import java.util.List;

/**
 * Regular expressions, parsed here and built as {@code dk.brics.automaton} automata through its API (a user's regex
 * never reaches brics's own parser), then written out as right-linear GBNF rules for the grammar runtime by
 * {@link AutomatonGbnf}.
 *
 * <p>The subset: literals; {@code .} (any character but \n \r U+0085, U+2028, U+2029, as Java's); classes
 * {@code [a-z] [^...]} with escapes; {@code \d \D \w \W \s \S} (ASCII, as Java's defaults); escapes
 * {@code \t \n \r \f \v \0 \xHH \\uHHHH \\u{H..}} and escaped punctuation; groups {@code (...) (?:...) (?<name>...)};
 * alternation; quantifiers {@code * + ? {m} {m,} {m,n}}, lazy ones ({@code *?}) meaning the same language;
 * {@code ^} and {@code $} at the start and end of a branch. Refused with their offset: lookaround, backreferences,
 * word boundaries, Unicode property classes, inline flags, possessive quantifiers, nested classes. A regex constraint
 * matches the whole output; a JSON Schema {@code pattern} matches anywhere in the string unless anchored (ECMA-262
 * search semantics).
 *
 * <p>Characters: brics works on UTF-16 units, so code points above U+FFFF are one stand-in unit ({@link #SUPP}) that
 * means all of them; they are therefore supported where a set holds all of them ({@code .}, negated classes) and
 * refused as literals.
 */
final class Regex {
    /** The UTF-16 unit that stands for every code point above U+FFFF (a surrogate, never a character by itself). */
    static final char SUPP = 0xD800;

    private final String s;
    private final boolean search;
    private int i, depth;
    private boolean consumed;

    private Regex(String s, boolean search) {
        this.s = s;
        this.search = search;
    }

    /** The whole-output regex as GBNF (start rule {@code root}). */
    static String toGbnf(String regex) throws ConstraintException {
        Automaton a = fullMatch(regex);
        StringBuilder g = new StringBuilder();
        String start = AutomatonGbnf.rules(a, "re", false, g, regex);
        return "root ::= " + start + "\n" + g;
    }

    /** The language of {@code regex} matched as a whole. */
    static Automaton fullMatch(String regex) throws ConstraintException {
        return new Regex(regex, false).top();
    }

    /** The strings in which JSON Schema {@code pattern} matches somewhere (unanchored sides take anything). */
    static Automaton search(String pattern) throws ConstraintException {
        return new Regex(pattern, true).top();
    }

    /** Any string of code points (stand-in included). */
    static Automaton anyString() { return anyChar().repeat(); }

    static Automaton anyChar() {
        return Automaton.makeCharRange('\u0000', '\uD7FF').union(Automaton.makeCharRange('\uE000', '\uFFFF'))
                .union(Automaton.makeChar(SUPP));
    }

    private Automaton top() throws ConstraintException {
        if (s.length() > 10_000) throw error("regex longer than 10000 characters", 0);
        List<Automaton> branches = new ArrayList<>();
        while (true) {
            consumed = false;
            boolean startAnchor = false;
            if (i < s.length() && s.charAt(i) == '^') { i++; startAnchor = true; }
            Automaton b = concat();
            boolean endAnchor = false;
            if (i < s.length() && s.charAt(i) == '$') { i++; endAnchor = true; }
            if (search) {
                if (!startAnchor) b = anyString().concatenate(b);
                if (!endAnchor) b = b.concatenate(anyString());
            }
            branches.add(b);
            if (i >= s.length()) break;
            if (s.charAt(i) == '|') { i++; continue; }
            if (s.charAt(i) == ')') throw error("unbalanced )", i);
            throw error("unexpected '" + s.charAt(i) + "'", i);
        }
        Automaton a = Automaton.union(branches);
        a.minimize();
        if (a.isEmpty()) throw error("the regex matches nothing", 0);
        return a;
    }

    private Automaton alternation() throws ConstraintException {
        List<Automaton> branches = new ArrayList<>();
        branches.add(concat());
        while (i < s.length() && s.charAt(i) == '|') {
            i++;
            branches.add(concat());
        }
        return Automaton.union(branches);
    }

    private Automaton concat() throws ConstraintException {
        Automaton a = Automaton.makeEmptyString();
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '|' || c == ')') break;
            if (c == '$') {
                if (depth == 0 && (i + 1 == s.length() || s.charAt(i + 1) == '|')) break;
                if (!search && s.substring(i + 1).chars().allMatch(x -> x == ')')) { i++; continue; }
                throw error("$ is supported only at the end of the regex or of a top-level alternative", i);
            }
            if (c == '^') {
                if (!search && !consumed) { i++; continue; }
                throw error("^ is supported only at the start of the regex or of a top-level alternative", i);
            }
            Automaton atom = atom();
            consumed = true;
            a = a.concatenate(quantifiers(atom));
        }
        return a;
    }

    private Automaton quantifiers(Automaton a) throws ConstraintException {
        while (i < s.length()) {
            char c = s.charAt(i);
            int at = i;
            if (c == '*') { i++; a = a.repeat(); }
            else if (c == '+') { i++; a = a.repeat(1); }
            else if (c == '?') { i++; a = a.optional(); }
            else if (c == '{') {
                i++;
                int min = number(at), max = min;
                if (i < s.length() && s.charAt(i) == ',') {
                    i++;
                    max = i < s.length() && Character.isDigit(s.charAt(i)) ? number(at) : -1;
                }
                if (i >= s.length() || s.charAt(i) != '}') throw error("bad repetition: expected {m}, {m,} or {m,n}", at);
                i++;
                if (max >= 0 && max < min) throw error("repetition {" + min + "," + max + "} has max < min", at);
                a = max < 0 ? a.repeat(min) : a.repeat(min, max);
            } else break;
            if (i < s.length() && s.charAt(i) == '?') i++; // lazy: same language
            else if (i < s.length() && s.charAt(i) == '+') throw error("possessive quantifiers are not supported", i);
        }
        return a;
    }

    private int number(int at) throws ConstraintException {
        int start = i;
        while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
        if (start == i) throw error("bad repetition: expected a number", at);
        if (i - start > 4 || Integer.parseInt(s.substring(start, i)) > 1000) throw error("repetition count above 1000", at);
        return Integer.parseInt(s.substring(start, i));
    }

    private Automaton atom() throws ConstraintException {
        char c = s.charAt(i);
        int at = i;
        switch (c) {
            case '(' -> {
                i++;
                if (s.startsWith("?:", i)) i += 2;
                else if (s.startsWith("?=", i) || s.startsWith("?!", i) || s.startsWith("?<=", i) || s.startsWith("?<!", i))
                    throw error("lookaround is not supported", at);
                else if (s.startsWith("?<", i) || s.startsWith("?P<", i)) {
                    int close = s.indexOf('>', i);
                    if (close < 0) throw error("unterminated group name", at);
                    i = close + 1;
                } else if (i < s.length() && s.charAt(i) == '?') throw error("inline flags and special groups are not supported", at);
                if (++depth > Gbnf.MAX_DEPTH) throw error("groups nested deeper than " + Gbnf.MAX_DEPTH, at);
                Automaton a = alternation();
                depth--;
                if (i >= s.length() || s.charAt(i) != ')') throw error("missing )", at);
                i++;
                return a;
            }
            case '[' -> { return set(charClass(), at); }
            case '.' -> {
                i++;
                return set(Gbnf.complement(new int[][]{{'\n', '\n'}, {'\r', '\r'}, {0x85, 0x85}, {0x2028, 0x2029}}), at);
            }
            case '\\' -> {
                int[][] cls = escapeClass();
                if (cls != null) return set(cls, at);
                int cp = escapeChar(false);
                return set(new int[][]{{cp, cp}}, at);
            }
            case '*', '+', '?', '{' -> throw error("nothing to repeat", at);
            default -> {
                int cp = s.codePointAt(i);
                i += Character.charCount(cp);
                return set(new int[][]{{cp, cp}}, at);
            }
        }
    }

    private int[][] charClass() throws ConstraintException {
        int open = i++;
        boolean negated = i < s.length() && s.charAt(i) == '^';
        if (negated) i++;
        List<int[]> ranges = new ArrayList<>();
        boolean first = true;
        while (true) {
            if (i >= s.length()) throw error("unterminated character class", open);
            char c = s.charAt(i);
            if (c == ']' && !first) { i++; break; }
            if (c == '[') throw error("nested classes are not supported (escape [ inside a class)", i);
            if (c == '&' && s.startsWith("&&", i)) throw error("class intersection is not supported", i);
            first = false;
            int lo;
            if (c == '\\') {
                int[][] cls = escapeClass();
                if (cls != null) {
                    for (int[] r : cls) ranges.add(r);
                    continue;
                }
                lo = escapeChar(true);
            } else {
                lo = s.codePointAt(i);
                i += Character.charCount(lo);
            }
            int hi = lo;
            if (i + 1 < s.length() && s.charAt(i) == '-' && s.charAt(i + 1) != ']') {
                int dash = i++;
                if (s.charAt(i) == '\\') {
                    if (escapeClass() != null) throw error("a class escape cannot end a range", dash);
                    hi = escapeChar(true);
                } else {
                    hi = s.codePointAt(i);
                    i += Character.charCount(hi);
                }
                if (hi < lo) throw error("character range out of order", dash);
            }
            ranges.add(new int[]{lo, hi});
        }
        int[][] r = Gbnf.normalize(ranges);
        return negated ? Gbnf.complement(r) : Gbnf.withoutSurrogates(r);
    }

    private static final int[][] DIGIT = {{'0', '9'}}, WORD = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}},
            SPACE = {{'\t', '\r'}, {' ', ' '}};

    /** A class escape at i ({@code \d} ...), consumed; null (nothing consumed) if it is not one. */
    private int[][] escapeClass() throws ConstraintException {
        if (i + 1 >= s.length()) return null;
        int[][] r = switch (s.charAt(i + 1)) {
            case 'd' -> DIGIT;
            case 'D' -> Gbnf.complement(DIGIT);
            case 'w' -> WORD;
            case 'W' -> Gbnf.complement(WORD);
            case 's' -> SPACE;
            case 'S' -> Gbnf.complement(SPACE);
            default -> null;
        };
        if (r != null) i += 2;
        return r;
    }

    private int escapeChar(boolean inClass) throws ConstraintException {
        int at = i++;
        if (i >= s.length()) throw error("dangling \\", at);
        char c = s.charAt(i++);
        switch (c) {
            case 't': return '\t';
            case 'n': return '\n';
            case 'r': return '\r';
            case 'f': return '\f';
            case 'v': return 0x0B;
            case '0': return 0;
            case 'x': return hex(2, at);
            case 'u':
                if (i < s.length() && s.charAt(i) == '{') {
                    int close = s.indexOf('}', i);
                    if (close < 0 || close == i + 1 || close - i > 7) throw error("bad \\u{...} escape", at);
                    int v;
                    try { v = Integer.parseInt(s.substring(i + 1, close), 16); } catch (NumberFormatException e) { throw error("bad \\u{...} escape", at); }
                    i = close + 1;
                    if (v > Gbnf.MAX_CP || (v >= 0xD800 && v <= 0xDFFF)) throw error("escape is not a Unicode scalar value", at);
                    return v;
                }
                return hex(4, at);
            case 'b':
                if (inClass) return '\b';
                throw error("word boundaries are not supported", at);
            case 'B': throw error("word boundaries are not supported", at);
            case 'k': throw error("backreferences are not supported", at);
            case 'p', 'P': throw error("Unicode property classes are not supported", at);
            case 'A', 'z', 'Z', 'G': throw error("\\" + c + " anchors are not supported; use ^ and $", at);
            default:
                if (c >= '1' && c <= '9') throw error("backreferences are not supported", at);
                if (Character.isLetterOrDigit(c)) throw error("unknown escape \\" + c, at);
                return c;
        }
    }

    private int hex(int n, int at) throws ConstraintException {
        if (i + n > s.length()) throw error("expected " + n + " hex digits", at);
        int v = 0;
        for (int k = 0; k < n; k++) {
            int d = Character.digit(s.charAt(i + k), 16);
            if (d < 0) throw error("expected " + n + " hex digits", at);
            v = v * 16 + d;
        }
        i += n;
        if (v >= 0xD800 && v <= 0xDFFF) throw error("escape is a surrogate, not a character", at);
        return v;
    }

    /** The automaton of one character from the normalized {@code ranges}. */
    private Automaton set(int[][] ranges, int at) throws ConstraintException {
        List<Automaton> parts = new ArrayList<>();
        long supp = 0;
        for (int[] r : Gbnf.withoutSurrogates(ranges)) {
            if (r[0] <= 0xFFFF) parts.add(Automaton.makeCharRange((char) r[0], (char) Math.min(r[1], 0xFFFF)));
            if (r[1] > 0xFFFF) supp += r[1] - Math.max(r[0], 0x10000) + 1;
        }
        if (supp == Gbnf.MAX_CP - 0xFFFF) parts.add(Automaton.makeChar(SUPP));
        else if (supp > 0) throw error("code points above U+FFFF are supported only as part of . or a negated class", at);
        if (parts.isEmpty()) throw error("empty character class", at);
        return Automaton.union(parts);
    }

    private ConstraintException error(String msg, int at) {
        return new ConstraintException("regex: " + msg, "offset " + at);
    }
}
