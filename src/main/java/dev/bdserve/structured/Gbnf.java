package dev.bdserve.structured;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parser for llama.cpp's GBNF grammar notation: {@code name ::= body} rules, alternatives {@code |}, grouping
 * {@code ( )}, repetition {@code * + ? {m} {m,} {m,n}}, string literals {@code "..."}, character classes
 * {@code [a-z] [^"\\]}, {@code .} (any character), escapes {@code \n \r \t \\ \" \[ \] \- \xHH \\uHHHH \UHHHHHHHH}
 * and {@code #} comments. A rule's body may span lines; it ends where the next {@code name ::=} starts. The start
 * rule is {@code root}. Errors name the line and column.
 */
final class Gbnf {
    /** A grammar expression over Unicode code points. */
    sealed interface Expr permits Lit, Cls, Ref, Seq, Alt, Rep {}

    /** A string of code points. */
    record Lit(int[] codePoints) implements Expr {}

    /** A set of code points: sorted, disjoint, inclusive ranges {lo, hi}. */
    record Cls(int[][] ranges) implements Expr {}

    /** A reference to a rule; {@code at} is where it is written, for errors. */
    record Ref(String name, String at) implements Expr {}

    record Seq(List<Expr> items) implements Expr {}

    record Alt(List<Expr> options) implements Expr {}

    /** {@code e} repeated min..max times (max -1: unbounded). */
    record Rep(Expr e, int min, int max) implements Expr {}

    /** The largest Unicode code point. */
    static final int MAX_CP = 0x10FFFF;

    /** Parses GBNF text into rules by name, in order of definition. */
    static Map<String, Expr> parse(String src) throws ConstraintException {
        return new Gbnf(src).rules();
    }

    /** Deepest group nesting accepted (the parser recurses per level). */
    static final int MAX_DEPTH = 200;

    private final String s;
    private int i, depth;

    private Gbnf(String s) { this.s = s; }

    private Map<String, Expr> rules() throws ConstraintException {
        Map<String, Expr> rules = new LinkedHashMap<>();
        skip();
        if (i >= s.length()) throw error("empty grammar");
        while (i < s.length()) {
            int start = i;
            String name = name();
            if (name.isEmpty()) throw error("expected a rule name");
            skip();
            if (!s.startsWith("::=", i)) throw error("expected ::= after rule name " + name);
            i += 3;
            skip();
            Expr body = alternatives(false);
            if (i < s.length() && s.charAt(i) == ')') throw error("unexpected character ')'");
            if (rules.putIfAbsent(name, body) != null) {
                i = start;
                throw error("rule " + name + " is defined twice");
            }
        }
        return rules;
    }

    private Expr alternatives(boolean nested) throws ConstraintException {
        List<Expr> alts = new ArrayList<>();
        alts.add(sequence(nested));
        while (i < s.length() && s.charAt(i) == '|') {
            i++;
            skip();
            alts.add(sequence(nested));
        }
        return alts.size() == 1 ? alts.get(0) : new Alt(alts);
    }

    private Expr sequence(boolean nested) throws ConstraintException {
        List<Expr> items = new ArrayList<>();
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '|' || c == ')') break;
            if (!nested && isNameStart(c) && startsRule()) break;
            Expr e;
            if (c == '"') {
                e = literal();
            } else if (c == '[') {
                e = charClass();
            } else if (c == '.') {
                i++;
                e = new Cls(complement(new int[0][]));
            } else if (c == '(') {
                if (++depth > MAX_DEPTH) throw error("groups nested deeper than " + MAX_DEPTH);
                i++;
                skip();
                e = alternatives(true);
                depth--;
                if (i >= s.length() || s.charAt(i) != ')') throw error("expected )");
                i++;
            } else if (isNameStart(c)) {
                String at = where(i);
                e = new Ref(name(), at);
            } else {
                throw error("unexpected character '" + c + "'");
            }
            skip();
            while (i < s.length()) {
                char q = s.charAt(i);
                if (q == '*') { e = new Rep(e, 0, -1); i++; }
                else if (q == '+') { e = new Rep(e, 1, -1); i++; }
                else if (q == '?') { e = new Rep(e, 0, 1); i++; }
                else if (q == '{') e = braces(e);
                else break;
                skip();
            }
            items.add(e);
        }
        return items.size() == 1 ? items.get(0) : new Seq(items);
    }

    private Expr braces(Expr e) throws ConstraintException {
        int open = i++;
        skipSpaces();
        int min = number(), max = min;
        skipSpaces();
        if (i < s.length() && s.charAt(i) == ',') {
            i++;
            skipSpaces();
            max = i < s.length() && Character.isDigit(s.charAt(i)) ? number() : -1;
            skipSpaces();
        }
        if (i >= s.length() || s.charAt(i) != '}') throw error("expected } to close the repetition");
        i++;
        if (max >= 0 && max < min) {
            i = open;
            throw error("repetition {" + min + "," + max + "} has max < min");
        }
        return new Rep(e, min, max);
    }

    private int number() throws ConstraintException {
        int start = i;
        while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
        if (start == i) throw error("expected a number");
        if (i - start > 6) { i = start; throw error("repetition count too large"); }
        return Integer.parseInt(s.substring(start, i));
    }

    private Expr literal() throws ConstraintException {
        int open = i++;
        List<Integer> cps = new ArrayList<>();
        while (true) {
            if (i >= s.length()) { i = open; throw error("unterminated string literal"); }
            char c = s.charAt(i);
            if (c == '"') { i++; break; }
            cps.add(c == '\\' ? escape() : nextCodePoint());
        }
        return new Lit(cps.stream().mapToInt(Integer::intValue).toArray());
    }

    private Expr charClass() throws ConstraintException {
        int open = i++;
        boolean negated = i < s.length() && s.charAt(i) == '^';
        if (negated) i++;
        List<int[]> ranges = new ArrayList<>();
        while (true) {
            if (i >= s.length()) { i = open; throw error("unterminated character class"); }
            if (s.charAt(i) == ']') { i++; break; }
            int lo = s.charAt(i) == '\\' ? escape() : nextCodePoint(), hi = lo;
            if (i + 1 < s.length() && s.charAt(i) == '-' && s.charAt(i + 1) != ']') {
                i++;
                hi = s.charAt(i) == '\\' ? escape() : nextCodePoint();
                if (hi < lo) throw error("character range out of order");
            }
            ranges.add(new int[]{lo, hi});
        }
        int[][] r = normalize(ranges);
        return new Cls(negated ? complement(r) : r);
    }

    private int escape() throws ConstraintException {
        int at = i++;
        if (i >= s.length()) throw error("dangling \\");
        char c = s.charAt(i++);
        return switch (c) {
            case 'n' -> '\n';
            case 'r' -> '\r';
            case 't' -> '\t';
            case 'f' -> '\f';
            case '0' -> 0;
            case 'x' -> hex(2, at);
            case 'u' -> hex(4, at);
            case 'U' -> hex(8, at);
            case '\\', '"', '[', ']', '-', '^', '/', '\'', '.', '|', '(', ')', '*', '+', '?', '{', '}' -> c;
            default -> {
                i = at;
                throw error("unknown escape \\" + c);
            }
        };
    }

    private int hex(int n, int at) throws ConstraintException {
        if (i + n > s.length()) { i = at; throw error("expected " + n + " hex digits"); }
        int v = 0;
        for (int k = 0; k < n; k++) {
            int d = Character.digit(s.charAt(i + k), 16);
            if (d < 0) { i = at; throw error("expected " + n + " hex digits"); }
            v = v * 16 + d;
        }
        i += n;
        if (v > MAX_CP || (v >= 0xD800 && v <= 0xDFFF)) { i = at; throw error("escape is not a Unicode scalar value"); }
        return v;
    }

    private int nextCodePoint() {
        int cp = s.codePointAt(i);
        i += Character.charCount(cp);
        return cp;
    }

    private boolean startsRule() {
        int save = i;
        name();
        skipSpaces();
        boolean rule = s.startsWith("::=", i);
        i = save;
        return rule;
    }

    private String name() {
        int start = i;
        while (i < s.length() && (isNameStart(s.charAt(i)) || Character.isDigit(s.charAt(i)))) i++;
        return s.substring(start, i);
    }

    private static boolean isNameStart(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
    }

    /** Skips whitespace, newlines and comments. */
    private void skip() {
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '#') while (i < s.length() && s.charAt(i) != '\n') i++;
            else if (Character.isWhitespace(c)) i++;
            else break;
        }
    }

    private void skipSpaces() {
        while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) == '\t')) i++;
    }

    private String where(int pos) {
        int line = 1, col = 1;
        for (int k = 0; k < pos && k < s.length(); k++) {
            if (s.charAt(k) == '\n') { line++; col = 1; } else col++;
        }
        return "line " + line + ", column " + col;
    }

    private ConstraintException error(String msg) { return new ConstraintException("grammar: " + msg, where(i)); }

    // ---------------------------------------------------------------- code point sets

    /** Sorted, merged ranges. */
    static int[][] normalize(List<int[]> ranges) {
        List<int[]> sorted = new ArrayList<>(ranges);
        sorted.sort((a, b) -> Integer.compare(a[0], b[0]));
        List<int[]> out = new ArrayList<>();
        for (int[] r : sorted) {
            if (!out.isEmpty() && r[0] <= out.getLast()[1] + 1) out.getLast()[1] = Math.max(out.getLast()[1], r[1]);
            else out.add(new int[]{r[0], r[1]});
        }
        return out.toArray(int[][]::new);
    }

    /** All Unicode scalar values (no surrogates) not in the normalized {@code ranges}. */
    static int[][] complement(int[][] ranges) {
        List<int[]> out = new ArrayList<>();
        int next = 0;
        for (int[] r : ranges) {
            if (r[0] > next) out.add(new int[]{next, r[0] - 1});
            next = Math.max(next, r[1] + 1);
        }
        if (next <= MAX_CP) out.add(new int[]{next, MAX_CP});
        return withoutSurrogates(out.toArray(int[][]::new));
    }

    /** The ranges minus U+D800..U+DFFF, which UTF-8 cannot spell. */
    static int[][] withoutSurrogates(int[][] ranges) {
        List<int[]> out = new ArrayList<>();
        for (int[] r : ranges) {
            if (r[1] < 0xD800 || r[0] > 0xDFFF) out.add(r);
            else {
                if (r[0] < 0xD800) out.add(new int[]{r[0], 0xD7FF});
                if (r[1] > 0xDFFF) out.add(new int[]{0xE000, r[1]});
            }
        }
        return out.toArray(int[][]::new);
    }
}
