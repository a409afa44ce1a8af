package dev.bdserve.server;

import java.math.BigDecimal;
import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The subset of Jinja2 that chat templates use, with the semantics of Python's jinja2 under Hugging Face's
 * settings ({@code trim_blocks}, {@code lstrip_blocks}, loop controls, {@code raise_exception},
 * {@code strftime_now}, {@code tojson} with {@code ensure_ascii=False}): Python truthiness, string and dict
 * methods, slicing, {@code namespace()}, for-loops with {@code loop.*}, tests and the common filters. Values are
 * plain Java objects: String, Long, Double, Boolean, null (None), List, Map.
 *
 * <p>Written here rather than using a Java Jinja engine because chat templates are only correct when they render
 * byte for byte as in Python (whitespace, {@code tojson} spacing, {@code str()} of values).
 */
final class Jinja {
    /** A template's error: a bad template, or an operation Python would refuse. */
    static class TemplateException extends RuntimeException {
        TemplateException(String m) { super(m, null, false, false); }
    }

    /** The template called {@code raise_exception(message)}. */
    static final class Raised extends TemplateException {
        Raised(String m) { super(m); }
    }

    /** A function callable from templates: positional and keyword arguments. */
    interface Fn { Object call(List<Object> args, Map<String, Object> kwargs); }

    /** Python's Undefined: prints as "", is false, iterates as empty; other uses fail. */
    static final class Undefined {
        final String name;
        Undefined(String name) { this.name = name; }
        @Override public String toString() { return ""; }
    }

    /** A Python tuple: a list that prints as one ({@code (a, b)}), e.g. the pairs of {@code dict.items()}. */
    static final class Tuple extends ArrayList<Object> {
        Tuple(Collection<?> items) { super(items); }
    }

    /** {@code namespace(...)}: the one object whose attributes {@code set} may assign inside loops. */
    static final class Namespace extends LinkedHashMap<String, Object> {}

    private final Node root;

    Jinja(String source) {
        // as jinja2's lexer: newlines normalized to \n, and (keep_trailing_newline=False) one final newline dropped
        source = source.replace("\r\n", "\n").replace('\r', '\n');
        if (source.endsWith("\n")) source = source.substring(0, source.length() - 1);
        this.root = new Parser(new Lexer(source).tokens()).parseTemplate();
    }

    /** Renders with {@code vars} as globals (the template may shadow them); {@code now} serves strftime_now. */
    String render(Map<String, Object> vars, Supplier<LocalDateTime> now) {
        Scope s = new Scope(null);
        s.vars.put("raise_exception", (Fn) (a, k) -> { throw new Raised(a.isEmpty() ? "" : str(a.get(0))); });
        s.vars.put("strftime_now", (Fn) (a, k) -> strftime(str(a.get(0)), now.get()));
        s.vars.put("namespace", (Fn) (a, k) -> { Namespace n = new Namespace(); for (Object o : a) if (o instanceof Map<?, ?> m) m.forEach((x, y) -> n.put(str(x), y)); n.putAll(k); return n; });
        s.vars.put("range", (Fn) (a, k) -> {
            long start = 0, stop, step = 1;
            if (a.size() == 1) stop = toLong(a.get(0)); else { start = toLong(a.get(0)); stop = toLong(a.get(1)); if (a.size() > 2) step = toLong(a.get(2)); }
            if (step == 0) throw new TemplateException("range() arg 3 must not be zero");
            List<Object> r = new ArrayList<>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) r.add(i);
            return r;
        });
        s.vars.put("dict", (Fn) (a, k) -> { Map<String, Object> m = new LinkedHashMap<>(); for (Object o : a) if (o instanceof Map<?, ?> mm) mm.forEach((x, y) -> m.put(str(x), y)); m.putAll(k); return m; });
        for (var e : vars.entrySet()) s.vars.put(e.getKey(), normalize(e.getValue()));
        StringBuilder out = new StringBuilder();
        try {
            root.exec(s, out);
        } catch (StackOverflowError e) {
            throw new TemplateException("the template recursed too deeply");
        }
        return out.toString();
    }

    /** Maps, lists and numbers of any Java kind as the interpreter's own (String keys, Long, Double). */
    static Object normalize(Object v) {
        return switch (v) {
            case null -> null;
            case Integer i -> (long) i;
            case Short i -> (long) i;
            case Byte i -> (long) i;
            case Float f -> (double) f;
            case Namespace n -> n;
            case Map<?, ?> m -> { Map<String, Object> r = new LinkedHashMap<>(); m.forEach((k, x) -> r.put(String.valueOf(k), normalize(x))); yield r; }
            case Collection<?> c -> { List<Object> r = new ArrayList<>(c.size()); for (Object x : c) r.add(normalize(x)); yield r; }
            default -> v;
        };
    }

    // ---------------------------------------------------------------- lexer

    private enum T { TEXT, VAR_START, BLOCK_START, END, NAME, STRING, INT, FLOAT, OP, EOF }

    private record Tok(T type, String text, Object value, int line) {}

    private static final class Lexer {
        final String src;
        final List<Tok> out = new ArrayList<>();
        int line = 1;

        Lexer(String src) { this.src = src; }

        List<Tok> tokens() {
            int pos = 0;
            boolean lineStarting = true;
            while (true) {
                int i = nextOpen(pos);
                String text = src.substring(pos, i < 0 ? src.length() : i);
                if (i < 0) { emitText(text); break; }
                char kind = src.charAt(i + 1);
                char lmod = i + 2 < src.length() ? src.charAt(i + 2) : 0;
                if (lmod == '-') text = rstrip(text);
                else if (kind != '{' && lmod != '+') {
                    int l = text.lastIndexOf('\n') + 1;
                    if ((l > 0 || lineStarting) && text.substring(l).chars().allMatch(Jinja::isSpace)) text = text.substring(0, l);
                }
                emitText(text);
                line += count(src, pos, i);
                int start = i + 2 + (lmod == '-' || lmod == '+' ? 1 : 0);
                String close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
                int end = kind == '#' ? src.indexOf(close, start) : findClose(start, close);
                if (end < 0) throw new TemplateException("line " + line + ": unclosed '{" + kind + "'");
                char rmod = end > start ? src.charAt(end - 1) : 0;
                String inner = src.substring(start, rmod == '-' || (rmod == '+' && kind != '{') ? end - 1 : end);
                if (kind != '#') {
                    out.add(new Tok(kind == '{' ? T.VAR_START : T.BLOCK_START, null, null, line));
                    lexExpr(inner);
                    out.add(new Tok(T.END, null, null, line));
                }
                line += count(src, i, end);
                pos = end + 2;
                if (rmod == '-') {
                    int p = pos;
                    while (p < src.length() && isSpace(src.charAt(p))) p++;
                    line += count(src, pos, p);
                    lineStarting = p > pos && src.charAt(p - 1) == '\n';
                    pos = p;
                } else if (kind != '{' && rmod != '+' && src.startsWith("\n", pos)) {
                    pos++; line++; lineStarting = true;
                } else lineStarting = false;
                if (kind == '%' && inner.strip().equals("raw")) pos = raw(pos);
            }
            out.add(new Tok(T.EOF, null, null, line));
            return out;
        }

        /** The text of {@code {% raw %}...{% endraw %}} as it stands. */
        int raw(int pos) {
            var m = java.util.regex.Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%}").matcher(src);
            if (!m.find(pos)) throw new TemplateException("line " + line + ": missing endraw");
            out.removeLast(); out.removeLast(); out.removeLast();   // the raw tag's tokens
            emitText(src.substring(pos, m.start()));
            return m.end();
        }

        void emitText(String t) { if (!t.isEmpty()) out.add(new Tok(T.TEXT, t, null, line)); }

        int nextOpen(int from) {
            int best = -1;
            for (String o : new String[]{"{{", "{%", "{#"}) {
                int i = src.indexOf(o, from);
                if (i >= 0 && (best < 0 || i < best)) best = i;
            }
            return best;
        }

        int findClose(int from, String close) {
            char q = 0;
            for (int i = from; i < src.length() - 1; i++) {
                char c = src.charAt(i);
                if (q != 0) { if (c == '\\') i++; else if (c == q) q = 0; }
                else if (c == '\'' || c == '"') q = c;
                else if (src.startsWith(close, i)) return i;
            }
            return -1;
        }

        static int count(String s, int from, int to) {
            int n = 0;
            for (int i = from; i < to; i++) if (s.charAt(i) == '\n') n++;
            return n;
        }

        static final String[] OPS = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "~", "="};

        void lexExpr(String s) {
            int i = 0;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (Character.isWhitespace(c)) { i++; continue; }
                if (c == '\'' || c == '"') {
                    StringBuilder b = new StringBuilder();
                    int j = i + 1;
                    for (; j < s.length() && s.charAt(j) != c; j++) {
                        char d = s.charAt(j);
                        if (d != '\\' || j + 1 >= s.length()) { b.append(d); continue; }
                        char e = s.charAt(++j);
                        switch (e) {
                            case 'n' -> b.append('\n');
                            case 't' -> b.append('\t');
                            case 'r' -> b.append('\r');
                            case '\\', '\'', '"' -> b.append(e);
                            case 'u' -> { b.append((char) Integer.parseInt(s.substring(j + 1, j + 5), 16)); j += 4; }
                            case 'x' -> { b.append((char) Integer.parseInt(s.substring(j + 1, j + 3), 16)); j += 2; }
                            case '\n' -> {}
                            default -> b.append('\\').append(e);
                        }
                    }
                    if (j >= s.length()) throw new TemplateException("line " + line + ": unterminated string");
                    out.add(new Tok(T.STRING, null, b.toString(), line));
                    i = j + 1;
                } else if (Character.isDigit(c)) {
                    int j = i;
                    while (j < s.length() && (Character.isDigit(s.charAt(j)) || s.charAt(j) == '_')) j++;
                    boolean isFloat = false;
                    if (j + 1 < s.length() && s.charAt(j) == '.' && Character.isDigit(s.charAt(j + 1))) {
                        isFloat = true;
                        j++;
                        while (j < s.length() && Character.isDigit(s.charAt(j))) j++;
                    }
                    if (j < s.length() && (s.charAt(j) == 'e' || s.charAt(j) == 'E')) {
                        int k = j + 1;
                        if (k < s.length() && (s.charAt(k) == '+' || s.charAt(k) == '-')) k++;
                        if (k < s.length() && Character.isDigit(s.charAt(k))) {
                            isFloat = true;
                            j = k;
                            while (j < s.length() && Character.isDigit(s.charAt(j))) j++;
                        }
                    }
                    String num = s.substring(i, j).replace("_", "");
                    out.add(isFloat ? new Tok(T.FLOAT, null, Double.parseDouble(num), line) : new Tok(T.INT, null, Long.parseLong(num), line));
                    i = j;
                } else if (Character.isLetter(c) || c == '_') {
                    int j = i;
                    while (j < s.length() && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) j++;
                    out.add(new Tok(T.NAME, s.substring(i, j), null, line));
                    i = j;
                } else {
                    String op = null;
                    for (String o : OPS) if (s.startsWith(o, i)) { op = o; break; }
                    if (op == null) throw new TemplateException("line " + line + ": unexpected character '" + c + "'");
                    out.add(new Tok(T.OP, op, null, line));
                    i += op.length();
                }
            }
        }
    }

    // ---------------------------------------------------------------- scopes and nodes

    private static final class Scope {
        final Scope parent;
        final Map<String, Object> vars = new HashMap<>();
        Scope(Scope parent) { this.parent = parent; }

        Object get(String name) {
            for (Scope s = this; s != null; s = s.parent) if (s.vars.containsKey(name)) return s.vars.get(name);
            return new Undefined(name);
        }
    }

    private static final class Break extends RuntimeException { Break() { super(null, null, false, false); } }
    private static final class Continue extends RuntimeException { Continue() { super(null, null, false, false); } }

    private interface Node { void exec(Scope s, StringBuilder out); }

    private interface Expr { Object eval(Scope s); }

    private record Block(List<Node> body) implements Node {
        public void exec(Scope s, StringBuilder out) { for (Node n : body) n.exec(s, out); }
    }

    private record Text(String text) implements Node {
        public void exec(Scope s, StringBuilder out) { out.append(text); }
    }

    private record Output(Expr e) implements Node {
        public void exec(Scope s, StringBuilder out) { out.append(str(e.eval(s))); }
    }

    private record If(List<Expr> conds, List<Node> bodies, Node otherwise) implements Node {
        public void exec(Scope s, StringBuilder out) {
            for (int i = 0; i < conds.size(); i++) if (truthy(conds.get(i).eval(s))) { bodies.get(i).exec(s, out); return; }
            if (otherwise != null) otherwise.exec(s, out);
        }
    }

    private record For(List<String> targets, Expr iter, Expr filter, Node body, Node otherwise) implements Node {
        public void exec(Scope s, StringBuilder out) {
            List<Object> items = new ArrayList<>();
            for (Object o : iterate(iter.eval(s))) {
                if (filter != null) {
                    Scope f = new Scope(s);
                    bind(f, o);
                    if (!truthy(filter.eval(f))) continue;
                }
                items.add(o);
            }
            if (items.isEmpty()) { if (otherwise != null) otherwise.exec(s, out); return; }
            Map<String, Object> loop = new HashMap<>();
            int n = items.size();
            loop.put("length", (long) n);
            loop.put("cycle", (Fn) (a, k) -> a.get((int) ((long) loop.get("index0") % a.size())));
            for (int i = 0; i < n; i++) {
                Scope it = new Scope(s);
                bind(it, items.get(i));
                loop.put("index0", (long) i); loop.put("index", (long) i + 1);
                loop.put("revindex0", (long) (n - i - 1)); loop.put("revindex", (long) (n - i));
                loop.put("first", i == 0); loop.put("last", i == n - 1);
                loop.put("previtem", i > 0 ? items.get(i - 1) : new Undefined("previtem"));
                loop.put("nextitem", i < n - 1 ? items.get(i + 1) : new Undefined("nextitem"));
                it.vars.put("loop", loop);
                try { body.exec(it, out); }
                catch (Break b) { break; }
                catch (Continue c) { /* next item */ }
            }
        }

        private void bind(Scope sc, Object item) {
            if (targets.size() == 1) { sc.vars.put(targets.getFirst(), item); return; }
            List<Object> parts = iterate(item);
            if (parts.size() != targets.size()) throw new TemplateException("cannot unpack " + parts.size() + " values into " + targets.size());
            for (int j = 0; j < targets.size(); j++) sc.vars.put(targets.get(j), parts.get(j));
        }
    }

    private record Set(String name, String attr, Expr value, Node body) implements Node {
        public void exec(Scope s, StringBuilder out) {
            Object v;
            if (body != null) { StringBuilder b = new StringBuilder(); body.exec(s, b); v = b.toString(); }
            else v = value.eval(s);
            if (attr == null) { s.vars.put(name, v); return; }
            if (!(s.get(name) instanceof Namespace ns))
                throw new TemplateException("cannot assign attribute '" + attr + "' of '" + name + "': only a namespace() takes assignments");
            ns.put(attr, v);
        }
    }

    private record Macro(String name, List<String> params, List<Expr> defaults, Node body) implements Node {
        public void exec(Scope s, StringBuilder out) {
            s.vars.put(name, (Fn) (a, k) -> {
                Scope m = new Scope(s);
                for (int i = 0; i < params.size(); i++) {
                    String p = params.get(i);
                    Object v = i < a.size() ? a.get(i) : k.containsKey(p) ? k.get(p)
                            : defaults.get(i) != null ? defaults.get(i).eval(m) : new Undefined(p);
                    m.vars.put(p, v);
                }
                StringBuilder b = new StringBuilder();
                body.exec(m, b);
                return b.toString();
            });
        }
    }

    // ---------------------------------------------------------------- parser

    private static final class Parser {
        final List<Tok> toks;
        int p;

        Parser(List<Tok> toks) { this.toks = toks; }

        Tok peek() { return toks.get(p); }
        Tok next() { return toks.get(p++); }
        boolean isOp(String op) { Tok t = peek(); return t.type == T.OP && t.text.equals(op); }
        boolean isName(String n) { Tok t = peek(); return t.type == T.NAME && t.text.equals(n); }
        boolean acceptOp(String op) { if (isOp(op)) { p++; return true; } return false; }
        boolean acceptName(String n) { if (isName(n)) { p++; return true; } return false; }

        TemplateException error(String what) { return new TemplateException("line " + peek().line + ": " + what); }

        void expectOp(String op) { if (!acceptOp(op)) throw error("expected '" + op + "'"); }
        void expectEnd() { if (next().type != T.END) { p--; throw error("unexpected '" + describe(peek()) + "' in tag"); } }

        String name() {
            Tok t = next();
            if (t.type != T.NAME) { p--; throw error("expected a name, got '" + describe(t) + "'"); }
            return t.text;
        }

        static String describe(Tok t) { return t.type == T.END ? "end of tag" : t.type == T.EOF ? "end of template" : t.text != null ? t.text : String.valueOf(t.value); }

        Node parseTemplate() {
            Block b = parseBody(List.of());
            if (peek().type != T.EOF) throw error("unexpected '" + toks.get(p + 1).text + "'");
            return b;
        }

        /** Nodes up to a block tag named in {@code ends} (left unconsumed, positioned at its name) or EOF. */
        Block parseBody(List<String> ends) {
            List<Node> nodes = new ArrayList<>();
            while (true) {
                Tok t = peek();
                switch (t.type) {
                    case EOF -> {
                        if (!ends.isEmpty()) throw error("missing '" + ends.getLast() + "'");
                        return new Block(nodes);
                    }
                    case TEXT -> { p++; nodes.add(new Text(t.text)); }
                    case VAR_START -> { p++; Expr e = expr(); expectEnd(); nodes.add(new Output(e)); }
                    case BLOCK_START -> {
                        Tok kw = toks.get(p + 1);
                        if (kw.type == T.NAME && ends.contains(kw.text)) { p++; return new Block(nodes); }
                        p++;
                        nodes.add(statement());
                    }
                    default -> throw error("unexpected '" + describe(t) + "'");
                }
            }
        }

        Node statement() {
            String kw = name();
            switch (kw) {
                case "if" -> {
                    List<Expr> conds = new ArrayList<>();
                    List<Node> bodies = new ArrayList<>();
                    Node otherwise = null;
                    conds.add(expr()); expectEnd();
                    while (true) {
                        bodies.add(parseBody(List.of("elif", "else", "endif")));
                        String k = name();
                        if (k.equals("elif")) { conds.add(expr()); expectEnd(); }
                        else if (k.equals("else")) { expectEnd(); otherwise = parseBody(List.of("endif")); name(); expectEnd(); break; }
                        else { expectEnd(); break; }
                    }
                    return new If(conds, bodies, otherwise);
                }
                case "for" -> {
                    List<String> targets = new ArrayList<>();
                    targets.add(name());
                    while (acceptOp(",")) targets.add(name());
                    if (!acceptName("in")) throw error("expected 'in'");
                    Expr iter = condless();
                    Expr filter = acceptName("if") ? condless() : null;
                    acceptName("recursive");
                    expectEnd();
                    Node body = parseBody(List.of("else", "endfor"));
                    Node otherwise = null;
                    if (name().equals("else")) { expectEnd(); otherwise = parseBody(List.of("endfor")); name(); }
                    expectEnd();
                    return new For(targets, iter, filter, body, otherwise);
                }
                case "set" -> {
                    String n = name();
                    String attr = acceptOp(".") ? name() : null;
                    if (acceptOp("=")) { Expr v = exprOrTuple(); expectEnd(); return new Set(n, attr, v, null); }
                    expectEnd();
                    Node body = parseBody(List.of("endset"));
                    name(); expectEnd();
                    return new Set(n, attr, null, body);
                }
                case "macro" -> {
                    String n = name();
                    List<String> params = new ArrayList<>();
                    List<Expr> defaults = new ArrayList<>();
                    expectOp("(");
                    while (!acceptOp(")")) {
                        params.add(name());
                        defaults.add(acceptOp("=") ? expr() : null);
                        if (!isOp(")")) expectOp(",");
                    }
                    expectEnd();
                    Node body = parseBody(List.of("endmacro"));
                    name(); expectEnd();
                    return new Macro(n, params, defaults, body);
                }
                case "break" -> { expectEnd(); return (s, out) -> { throw new Break(); }; }
                case "continue" -> { expectEnd(); return (s, out) -> { throw new Continue(); }; }
                case "generation" -> {   // HF's AssistantTracker: only marks assistant text
                    expectEnd();
                    Node body = parseBody(List.of("endgeneration"));
                    name(); expectEnd();
                    return body;
                }
                case "do" -> { Expr e = expr(); expectEnd(); return (s, out) -> e.eval(s); }
                default -> { p--; throw error("unknown tag '" + kw + "'"); }
            }
        }

        Expr exprOrTuple() {
            Expr first = expr();
            if (!isOp(",")) return first;
            List<Expr> items = new ArrayList<>(List.of(first));
            while (acceptOp(",")) { if (peek().type == T.END) break; items.add(expr()); }
            return s -> { Tuple r = new Tuple(List.of()); for (Expr e : items) r.add(e.eval(s)); return r; };
        }

        Expr expr() {
            Expr e = condless();
            while (acceptName("if")) {
                Expr cond = or(), then = e;
                Expr otherwise = acceptName("else") ? expr() : null;
                e = s -> truthy(cond.eval(s)) ? then.eval(s) : otherwise == null ? new Undefined("else") : otherwise.eval(s);
            }
            return e;
        }

        Expr condless() { return or(); }

        Expr or() {
            Expr l = and();
            while (acceptName("or")) { Expr a = l, b = and(); l = s -> { Object v = a.eval(s); return truthy(v) ? v : b.eval(s); }; }
            return l;
        }

        Expr and() {
            Expr l = not();
            while (acceptName("and")) { Expr a = l, b = not(); l = s -> { Object v = a.eval(s); return !truthy(v) ? v : b.eval(s); }; }
            return l;
        }

        Expr not() {
            if (acceptName("not")) { Expr e = not(); return s -> !truthy(e.eval(s)); }
            return compare();
        }

        /** Comparisons chain as in Python: {@code a < b < c} is {@code a < b and b < c}, b evaluated once. */
        Expr compare() {
            Expr first = math1();
            List<String> ops = new ArrayList<>();
            List<Expr> rest = new ArrayList<>();
            while (true) {
                if (peek().type == T.OP && List.of("==", "!=", "<", "<=", ">", ">=").contains(peek().text)) ops.add(next().text);
                else if (acceptName("in")) ops.add("in");
                else if (isName("not") && toks.get(p + 1).type == T.NAME && toks.get(p + 1).text.equals("in")) { p += 2; ops.add("not in"); }
                else break;
                rest.add(math1());
            }
            if (ops.isEmpty()) return first;
            return s -> {
                Object left = first.eval(s);
                for (int i = 0; i < ops.size(); i++) {
                    Object right = rest.get(i).eval(s);
                    if (!truthy(compareOp(ops.get(i), left, right))) return false;
                    left = right;
                }
                return true;
            };
        }

        Expr math1() {
            Expr l = concat();
            while (isOp("+") || isOp("-")) {
                String op = next().text;
                Expr a = l, b = concat();
                l = s -> arith(op, a.eval(s), b.eval(s));
            }
            return l;
        }

        Expr concat() {
            Expr l = math2();
            while (acceptOp("~")) { Expr a = l, b = math2(); l = s -> str(a.eval(s)) + str(b.eval(s)); }
            return l;
        }

        Expr math2() {
            Expr l = pow();
            while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
                String op = next().text;
                Expr a = l, b = pow();
                l = s -> arith(op, a.eval(s), b.eval(s));
            }
            return l;
        }

        Expr pow() {
            Expr l = unary(true);
            while (acceptOp("**")) { Expr a = l, b = unary(true); l = s -> arith("**", a.eval(s), b.eval(s)); }
            return l;
        }

        Expr unary(boolean withFilter) {
            Expr e;
            if (acceptOp("-")) { Expr x = unary(false); e = s -> arith("-", 0L, x.eval(s)); }
            else if (acceptOp("+")) e = unary(false);
            else e = postfix(primary());
            return withFilter ? filters(e) : e;
        }

        Expr primary() {
            Tok t = next();
            switch (t.type) {
                case STRING -> {
                    StringBuilder b = new StringBuilder((String) t.value);
                    while (peek().type == T.STRING) b.append((String) next().value);
                    String v = b.toString();
                    return s -> v;
                }
                case INT, FLOAT -> { Object v = t.value; return s -> v; }
                case NAME -> {
                    switch (t.text) {
                        case "true", "True" -> { return s -> true; }
                        case "false", "False" -> { return s -> false; }
                        case "none", "None" -> { return s -> null; }
                        default -> { String n = t.text; return s -> s.get(n); }
                    }
                }
                case OP -> {
                    switch (t.text) {
                        case "(" -> {
                            if (acceptOp(")")) return s -> new Tuple(List.of());
                            Expr e = expr();
                            if (acceptOp(")")) return e;
                            List<Expr> items = new ArrayList<>(List.of(e));
                            while (acceptOp(",")) { if (isOp(")")) break; items.add(expr()); }
                            expectOp(")");
                            return s -> { Tuple r = new Tuple(List.of()); for (Expr x : items) r.add(x.eval(s)); return r; };
                        }
                        case "[" -> {
                            List<Expr> items = new ArrayList<>();
                            while (!acceptOp("]")) { items.add(expr()); if (!isOp("]")) expectOp(","); }
                            return s -> { List<Object> r = new ArrayList<>(); for (Expr x : items) r.add(x.eval(s)); return r; };
                        }
                        case "{" -> {
                            List<Expr[]> items = new ArrayList<>();
                            while (!acceptOp("}")) {
                                Expr k = expr(); expectOp(":");
                                items.add(new Expr[]{k, expr()});
                                if (!isOp("}")) expectOp(",");
                            }
                            return s -> { Map<String, Object> r = new LinkedHashMap<>(); for (Expr[] kv : items) r.put(str(kv[0].eval(s)), kv[1].eval(s)); return r; };
                        }
                        default -> {}
                    }
                }
                default -> {}
            }
            p--;
            throw error("unexpected '" + describe(t) + "'");
        }

        Expr postfix(Expr e) {
            while (true) {
                if (acceptOp(".")) {
                    Tok t = next();
                    String attr = t.type == T.INT ? String.valueOf(t.value) : t.text;
                    if (t.type != T.NAME && t.type != T.INT) { p--; throw error("expected an attribute name"); }
                    Expr obj = e;
                    e = s -> getAttr(obj.eval(s), attr);
                } else if (acceptOp("[")) {
                    Expr obj = e;
                    Expr[] parts = new Expr[3];
                    boolean slice = false;
                    int i = 0;
                    while (!isOp("]")) {
                        if (acceptOp(":")) { slice = true; if (++i > 2) throw error("bad slice"); continue; }
                        parts[i] = expr();
                    }
                    expectOp("]");
                    if (slice) e = s -> slice(obj.eval(s), parts[0] == null ? null : parts[0].eval(s), parts[1] == null ? null : parts[1].eval(s), parts[2] == null ? null : parts[2].eval(s));
                    else {
                        Expr key = parts[0];
                        if (key == null) throw error("empty subscript");
                        e = s -> getItem(obj.eval(s), key.eval(s));
                    }
                } else if (isOp("(")) {
                    Expr fn = e;
                    Args args = args();
                    e = s -> call(fn.eval(s), args.positional(s), args.keywords(s));
                } else return e;
            }
        }

        record Args(List<Expr> pos, Map<String, Expr> kw) {
            List<Object> positional(Scope s) { List<Object> r = new ArrayList<>(); for (Expr e : pos) r.add(e.eval(s)); return r; }
            Map<String, Object> keywords(Scope s) { Map<String, Object> r = new LinkedHashMap<>(); kw.forEach((k, e) -> r.put(k, e.eval(s))); return r; }
        }

        Args args() {
            expectOp("(");
            List<Expr> pos = new ArrayList<>();
            Map<String, Expr> kw = new LinkedHashMap<>();
            while (!acceptOp(")")) {
                if (peek().type == T.NAME && toks.get(p + 1).type == T.OP && toks.get(p + 1).text.equals("=")) {
                    String k = next().text; p++;
                    kw.put(k, expr());
                } else pos.add(expr());
                if (!isOp(")")) expectOp(",");
            }
            return new Args(pos, kw);
        }

        Expr filters(Expr e) {
            while (true) {
                if (acceptOp("|")) {
                    String n = name();
                    Args a = isOp("(") ? args() : new Args(List.of(), Map.of());
                    Expr x = e;
                    e = s -> filter(n, x.eval(s), a.positional(s), a.keywords(s), s);
                } else if (acceptName("is")) {
                    boolean negate = acceptName("not");
                    String n = name();
                    Args a;
                    if (isOp("(")) a = args();
                    else if (startsArg()) { Expr arg = unary(false); a = new Args(List.of(arg), Map.of()); }
                    else a = new Args(List.of(), Map.of());
                    Expr x = e;
                    e = s -> negate != test(n, x.eval(s), a.positional(s), s);
                } else if (isOp("(")) {
                    Expr fn = e;
                    Args args = args();
                    e = s -> call(fn.eval(s), args.positional(s), args.keywords(s));
                } else return e;
            }
        }

        boolean startsArg() {
            Tok t = peek();
            return switch (t.type) {
                case STRING, INT, FLOAT -> true;
                case NAME -> !List.of("else", "or", "and", "if", "in", "not", "is").contains(t.text);
                case OP -> t.text.equals("[") || t.text.equals("{");
                default -> false;
            };
        }
    }

    // ---------------------------------------------------------------- semantics

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Undefined u -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0;
            case String s -> !s.isEmpty();
            case Collection<?> c -> !c.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            default -> true;
        };
    }

    /** Python's {@code str()}. */
    static String str(Object v) {
        return switch (v) {
            case null -> "None";
            case String s -> s;
            case Undefined u -> "";
            case Boolean b -> b ? "True" : "False";
            case Double d -> pyFloat(d);
            default -> repr(v);
        };
    }

    /** Python's {@code repr()}. */
    static String repr(Object v) {
        return switch (v) {
            case null -> "None";
            case String s -> {
                char q = s.contains("'") && !s.contains("\"") ? '"' : '\'';
                StringBuilder b = new StringBuilder().append(q);
                for (char c : s.toCharArray()) {
                    switch (c) {
                        case '\\' -> b.append("\\\\");
                        case '\n' -> b.append("\\n");
                        case '\r' -> b.append("\\r");
                        case '\t' -> b.append("\\t");
                        default -> {
                            if (c == q) b.append('\\').append(c);
                            else if (c < 0x20 || c == 0x7f) b.append(String.format("\\x%02x", (int) c));
                            else b.append(c);
                        }
                    }
                }
                yield b.append(q).toString();
            }
            case Undefined u -> "";
            case Boolean b -> b ? "True" : "False";
            case Double d -> pyFloat(d);
            case Namespace n -> "<Namespace " + n + ">";
            case Tuple t -> {
                StringBuilder b = new StringBuilder("(");
                for (int i = 0; i < t.size(); i++) b.append(i > 0 ? ", " : "").append(repr(t.get(i)));
                yield b.append(t.size() == 1 ? ",)" : ")").toString();
            }
            case Map<?, ?> m -> {
                StringBuilder b = new StringBuilder("{");
                boolean first = true;
                for (var e : m.entrySet()) { if (!first) b.append(", "); first = false; b.append(repr(e.getKey())).append(": ").append(repr(e.getValue())); }
                yield b.append('}').toString();
            }
            case Collection<?> c -> {
                StringBuilder b = new StringBuilder("[");
                boolean first = true;
                for (Object o : c) { if (!first) b.append(", "); first = false; b.append(repr(o)); }
                yield b.append(']').toString();
            }
            default -> String.valueOf(v);
        };
    }

    /** Python's repr of a float: the shortest round-trip digits, positional for exponents -4..15. */
    static String pyFloat(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal b = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = b.unscaledValue().toString();
        int exp = digits.length() - 1 - b.scale();
        String sign = d < 0 ? "-" : "";
        if (exp >= -5 + 1 && exp < 16) {
            String plain = b.toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mant + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "NoneType";
            case String s -> "str";
            case Boolean b -> "bool";
            case Long l -> "int";
            case Double d -> "float";
            case Undefined u -> "Undefined";
            case Namespace n -> "Namespace";
            case Tuple t -> "tuple";
            case Map<?, ?> m -> "dict";
            case Collection<?> c -> "list";
            case Fn f -> "function";
            default -> v.getClass().getSimpleName();
        };
    }

    private static TemplateException undefinedError(Undefined u) { return new TemplateException("'" + u.name + "' is undefined"); }

    static List<Object> iterate(Object v) {
        return switch (v) {
            case Undefined u -> List.of();
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case Collection<?> c -> new ArrayList<>(c);
            case String s -> { List<Object> r = new ArrayList<>(); s.codePoints().forEach(c -> r.add(Character.toString(c))); yield r; }
            case null, default -> throw new TemplateException("'" + typeName(v) + "' object is not iterable");
        };
    }

    static long toLong(Object v) {
        return switch (v) {
            case Long l -> l;
            case Boolean b -> b ? 1 : 0;
            case Double d -> (long) (double) d;
            case null, default -> throw new TemplateException("'" + typeName(v) + "' object cannot be interpreted as an integer");
        };
    }

    private static boolean isNumber(Object v) { return v instanceof Long || v instanceof Double || v instanceof Boolean; }

    private static double toDouble(Object v) { return v instanceof Double d ? d : toLong(v); }

    static Object arith(String op, Object a, Object b) {
        if (a instanceof Undefined u) throw undefinedError(u);
        if (b instanceof Undefined u) throw undefinedError(u);
        if (op.equals("+")) {
            if (a instanceof String x && b instanceof String y) return x + y;
            if (a instanceof List<?> x && b instanceof List<?> y) { List<Object> r = new ArrayList<>(x); r.addAll(y); return r; }
        }
        if (op.equals("*")) {
            if (a instanceof String x && (b instanceof Long || b instanceof Boolean)) return x.repeat((int) Math.max(0, toLong(b)));
            if (b instanceof String y && (a instanceof Long || a instanceof Boolean)) return y.repeat((int) Math.max(0, toLong(a)));
        }
        if (!isNumber(a) || !isNumber(b))
            throw new TemplateException("unsupported operand type(s) for " + op + ": '" + typeName(a) + "' and '" + typeName(b) + "'");
        boolean ints = !(a instanceof Double) && !(b instanceof Double);
        if (ints) {
            long x = toLong(a), y = toLong(b);
            switch (op) {
                case "+" -> { return x + y; }
                case "-" -> { return x - y; }
                case "*" -> { return x * y; }
                case "/" -> { if (y == 0) throw new TemplateException("division by zero"); return (double) x / y; }
                case "//" -> { if (y == 0) throw new TemplateException("integer division or modulo by zero"); return Math.floorDiv(x, y); }
                case "%" -> { if (y == 0) throw new TemplateException("integer division or modulo by zero"); return Math.floorMod(x, y); }
                case "**" -> { if (y >= 0) { long r = 1; for (long i = 0; i < y; i++) r *= x; return r; } return Math.pow(x, y); }
                default -> throw new TemplateException("unknown operator " + op);
            }
        }
        double x = toDouble(a), y = toDouble(b);
        return switch (op) {
            case "+" -> x + y;
            case "-" -> x - y;
            case "*" -> x * y;
            case "/" -> { if (y == 0) throw new TemplateException("float division by zero"); yield x / y; }
            case "//" -> { if (y == 0) throw new TemplateException("float divmod()"); yield Math.floor(x / y); }
            case "%" -> { if (y == 0) throw new TemplateException("float modulo"); double m = x % y; yield m != 0 && (m < 0) != (y < 0) ? m + y : m; }
            case "**" -> Math.pow(x, y);
            default -> throw new TemplateException("unknown operator " + op);
        };
    }

    static boolean pyEquals(Object a, Object b) {
        if (a instanceof Undefined && b instanceof Undefined) return true;
        if (isNumber(a) && isNumber(b)) return toDouble(a) == toDouble(b);
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) if (!pyEquals(x.get(i), y.get(i))) return false;
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) return false;
            for (var e : x.entrySet()) if (!y.containsKey(e.getKey()) || !pyEquals(e.getValue(), y.get(e.getKey()))) return false;
            return true;
        }
        return Objects.equals(a, b);
    }

    static Object compareOp(String op, Object a, Object b) {
        switch (op) {
            case "==" -> { return pyEquals(a, b); }
            case "!=" -> { return !pyEquals(a, b); }
            case "in" -> { return contains(b, a); }
            case "not in" -> { return !contains(b, a); }
            default -> {}
        }
        int c;
        if (isNumber(a) && isNumber(b)) c = Double.compare(toDouble(a), toDouble(b));
        else if (a instanceof String x && b instanceof String y) c = x.compareTo(y);
        else throw new TemplateException("'" + op + "' not supported between instances of '" + typeName(a) + "' and '" + typeName(b) + "'");
        return switch (op) { case "<" -> c < 0; case "<=" -> c <= 0; case ">" -> c > 0; default -> c >= 0; };
    }

    static boolean contains(Object container, Object item) {
        return switch (container) {
            case String s -> {
                if (!(item instanceof String x)) throw new TemplateException("'in <string>' requires string as left operand, not " + typeName(item));
                yield s.contains(x);
            }
            case Map<?, ?> m -> item instanceof String && m.containsKey(item);
            case Collection<?> c -> { for (Object o : c) if (pyEquals(o, item)) yield true; yield false; }
            case Undefined u -> throw undefinedError(u);
            case null, default -> throw new TemplateException("argument of type '" + typeName(container) + "' is not iterable");
        };
    }

    /** {@code obj.attr}: a method or attribute of the value first, then its item, as jinja2's getattr. */
    static Object getAttr(Object obj, String attr) {
        if (obj instanceof Undefined u) throw new TemplateException("'" + u.name + "' is undefined (reading its '" + attr + "')");
        Object m = method(obj, attr);
        if (m != null) return m;
        if (obj instanceof Map<?, ?> map) return map.containsKey(attr) ? map.get(attr) : new Undefined(attr);
        return new Undefined(attr);
    }

    /** {@code obj[key]}: the item first, then an attribute, as jinja2's getitem. */
    static Object getItem(Object obj, Object key) {
        switch (obj) {
            case Undefined u -> throw new TemplateException("'" + u.name + "' is undefined (reading [" + repr(key) + "])");
            case Map<?, ?> map -> {
                if (key instanceof String k && map.containsKey(k)) return map.get(k);
            }
            case List<?> list -> {
                if (key instanceof Long || key instanceof Boolean) {
                    long i = toLong(key);
                    if (i < 0) i += list.size();
                    return i >= 0 && i < list.size() ? list.get((int) i) : new Undefined("[" + key + "]");
                }
            }
            case String s -> {
                if (key instanceof Long || key instanceof Boolean) {
                    int[] cps = s.codePoints().toArray();
                    long i = toLong(key);
                    if (i < 0) i += cps.length;
                    return i >= 0 && i < cps.length ? Character.toString(cps[(int) i]) : new Undefined("[" + key + "]");
                }
            }
            case null, default -> {}
        }
        if (key instanceof String k) { Object m = method(obj, k); if (m != null) return m; }
        return new Undefined("[" + repr(key) + "]");
    }

    static Object slice(Object obj, Object start, Object stop, Object step) {
        List<Object> items;
        boolean isString = obj instanceof String;
        if (isString) items = iterate(obj);
        else if (obj instanceof List<?> l) items = new ArrayList<>(l);
        else if (obj instanceof Undefined u) throw undefinedError(u);
        else throw new TemplateException("'" + typeName(obj) + "' object is not subscriptable");
        int n = items.size();
        long st = step == null ? 1 : toLong(step);
        if (st == 0) throw new TemplateException("slice step cannot be zero");
        long lo, hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(toLong(start), n, 0, n);
            hi = stop == null ? n : clamp(toLong(stop), n, 0, n);
        } else {
            lo = start == null ? n - 1 : clamp(toLong(start), n, -1, n - 1);
            hi = stop == null ? -1 : clamp(toLong(stop), n, -1, n - 1);
        }
        List<Object> r = new ArrayList<>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) r.add(items.get((int) i));
        if (!isString) return r;
        StringBuilder b = new StringBuilder();
        for (Object o : r) b.append((String) o);
        return b.toString();
    }

    private static long clamp(long i, int n, long min, long max) {
        if (i < 0) i += n;
        return Math.max(min, Math.min(max, i));
    }

    static Object call(Object fn, List<Object> args, Map<String, Object> kwargs) {
        if (fn instanceof Fn f) return f.call(args, kwargs);
        if (fn instanceof Undefined u) throw new TemplateException("'" + u.name + "' is undefined");
        throw new TemplateException("'" + typeName(fn) + "' object is not callable");
    }

    private static String arg(List<Object> a, int i, String dflt) {
        if (i >= a.size() || a.get(i) == null) return dflt;
        if (a.get(i) instanceof String s) return s;
        throw new TemplateException("expected a string argument, got '" + typeName(a.get(i)) + "'");
    }

    /** Python's methods of str, dict and list that templates call; null when there is none. */
    static Object method(Object obj, String name) {
        if (obj instanceof String s) {
            return switch (name) {
                case "startswith" -> (Fn) (a, k) -> anyPrefix(s, a.get(0), true);
                case "endswith" -> (Fn) (a, k) -> anyPrefix(s, a.get(0), false);
                case "strip" -> (Fn) (a, k) -> strip(s, arg(a, 0, null), true, true);
                case "lstrip" -> (Fn) (a, k) -> strip(s, arg(a, 0, null), true, false);
                case "rstrip" -> (Fn) (a, k) -> strip(s, arg(a, 0, null), false, true);
                case "split" -> (Fn) (a, k) -> split(s, arg(a, 0, null), a.size() > 1 ? toLong(a.get(1)) : -1);
                case "upper" -> (Fn) (a, k) -> s.toUpperCase(Locale.ROOT);
                case "lower" -> (Fn) (a, k) -> s.toLowerCase(Locale.ROOT);
                case "title" -> (Fn) (a, k) -> title(s);
                case "capitalize" -> (Fn) (a, k) -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
                case "replace" -> (Fn) (a, k) -> {
                    String from = arg(a, 0, ""), to = arg(a, 1, "");
                    long count = a.size() > 2 ? toLong(a.get(2)) : -1;
                    if (count < 0) return s.replace(from, to);
                    String r = s;
                    int at = 0;
                    StringBuilder b = new StringBuilder();
                    for (long i = 0; i < count; i++) {
                        int j = r.indexOf(from, at);
                        if (j < 0) break;
                        b.append(r, at, j).append(to);
                        at = j + from.length();
                    }
                    return b.append(r.substring(at)).toString();
                };
                case "find" -> (Fn) (a, k) -> (long) s.indexOf(arg(a, 0, ""));
                case "count" -> (Fn) (a, k) -> { String x = arg(a, 0, ""); long c = 0; if (x.isEmpty()) return (long) s.length() + 1; for (int i = s.indexOf(x); i >= 0; i = s.indexOf(x, i + x.length())) c++; return c; };
                case "join" -> (Fn) (a, k) -> { StringBuilder b = new StringBuilder(); boolean first = true; for (Object o : iterate(a.get(0))) { if (!first) b.append(s); first = false; b.append(str(o)); } return b.toString(); };
                case "splitlines" -> (Fn) (a, k) -> { List<Object> r = new ArrayList<>(); for (String x : s.split("\r\n|\r|\n", -1)) r.add(x); if (!r.isEmpty() && ((String) r.getLast()).isEmpty()) r.removeLast(); return r; };
                case "isdigit" -> (Fn) (a, k) -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
                case "isspace" -> (Fn) (a, k) -> !s.isEmpty() && s.chars().allMatch(Jinja::isSpace);
                default -> null;
            };
        }
        if (obj instanceof Map<?, ?> m && !(obj instanceof Namespace)) {
            return switch (name) {
                case "items" -> (Fn) (a, k) -> { List<Object> r = new ArrayList<>(); m.forEach((x, y) -> r.add(new Tuple(java.util.Arrays.asList(x, y)))); return r; };
                case "keys" -> (Fn) (a, k) -> new ArrayList<Object>(m.keySet());
                case "values" -> (Fn) (a, k) -> new ArrayList<Object>(m.values());
                case "get" -> (Fn) (a, k) -> m.containsKey(a.get(0)) ? m.get(a.get(0)) : a.size() > 1 ? a.get(1) : null;
                default -> null;
            };
        }
        if (obj instanceof List<?> l) {
            return switch (name) {
                case "index" -> (Fn) (a, k) -> { for (int i = 0; i < l.size(); i++) if (pyEquals(l.get(i), a.get(0))) return (long) i; throw new TemplateException(repr(a.get(0)) + " is not in list"); };
                case "count" -> (Fn) (a, k) -> l.stream().filter(x -> pyEquals(x, a.get(0))).count();
                default -> null;
            };
        }
        return null;
    }

    private static boolean anyPrefix(String s, Object p, boolean start) {
        if (p instanceof String x) return start ? s.startsWith(x) : s.endsWith(x);
        if (p instanceof List<?> l) { for (Object o : l) if (anyPrefix(s, o, start)) return true; return false; }
        throw new TemplateException((start ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " + typeName(p));
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int i = 0, j = s.length();
        if (left) while (i < j && (chars == null ? isSpace(s.charAt(i)) : chars.indexOf(s.charAt(i)) >= 0)) i++;
        if (right) while (j > i && (chars == null ? isSpace(s.charAt(j - 1)) : chars.indexOf(s.charAt(j - 1)) >= 0)) j--;
        return s.substring(i, j);
    }

    /** Python's {@code str.isspace} of one character (also what {@code \\s} matches in its regular expressions). */
    static boolean isSpace(int c) { return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85; }

    private static String rstrip(String s) { return strip(s, null, false, true); }

    static List<Object> split(String s, String sep, long max) {
        List<Object> r = new ArrayList<>();
        if (sep == null) {
            int i = 0, n = s.length();
            while (true) {
                while (i < n && isSpace(s.charAt(i))) i++;
                if (i >= n) break;
                if (max >= 0 && r.size() == max) { r.add(strip(s.substring(i), null, false, true)); break; }
                int j = i;
                while (j < n && !isSpace(s.charAt(j))) j++;
                r.add(s.substring(i, j));
                i = j;
            }
            return r;
        }
        if (sep.isEmpty()) throw new TemplateException("empty separator");
        int at = 0;
        while (max < 0 || r.size() < max) {
            int j = s.indexOf(sep, at);
            if (j < 0) break;
            r.add(s.substring(at, j));
            at = j + sep.length();
        }
        r.add(s.substring(at));
        return r;
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder();
        boolean prevLetter = false;
        for (char c : s.toCharArray()) {
            b.append(prevLetter ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevLetter = Character.isLetter(c);
        }
        return b.toString();
    }

    static boolean test(String name, Object v, List<Object> a, Scope s) {
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "boolean" -> v instanceof Boolean;
            case "string" -> v instanceof String;
            case "number" -> v instanceof Long || v instanceof Double || v instanceof Boolean;
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "mapping" -> v instanceof Map;
            case "iterable" -> v instanceof String || v instanceof Collection || v instanceof Map || v instanceof Undefined;
            case "sequence" -> v instanceof String || v instanceof Collection || v instanceof Map;
            case "callable" -> v instanceof Fn;
            case "lower" -> v instanceof String x && x.equals(x.toLowerCase(Locale.ROOT));
            case "upper" -> v instanceof String x && x.equals(x.toUpperCase(Locale.ROOT));
            case "even" -> toLong(v) % 2 == 0;
            case "odd" -> toLong(v) % 2 != 0;
            case "divisibleby" -> toLong(v) % toLong(a.get(0)) == 0;
            case "equalto", "eq", "==", "sameas" -> pyEquals(v, a.get(0));
            case "ne", "!=" -> !pyEquals(v, a.get(0));
            case "lt", "<", "le", "<=", "gt", ">", "ge", ">=" -> (Boolean) compareOp(switch (name) {
                case "lt" -> "<"; case "le" -> "<="; case "gt" -> ">"; case "ge" -> ">="; default -> name; }, v, a.get(0));
            case "in" -> contains(a.get(0), v);
            default -> throw new TemplateException("no test named '" + name + "'");
        };
    }

    private static final java.util.regex.Pattern WORD = java.util.regex.Pattern.compile("\\w+", java.util.regex.Pattern.UNICODE_CHARACTER_CLASS);

    static Object filter(String name, Object v, List<Object> a, Map<String, Object> kw, Scope s) {
        return switch (name) {
            case "tojson" -> {
                Object indent = kw.containsKey("indent") ? kw.get("indent") : a.size() > 1 ? a.get(1) : null;
                boolean sortKeys = truthy(kw.getOrDefault("sort_keys", a.size() > 3 ? a.get(3) : false));
                boolean ensureAscii = truthy(kw.getOrDefault("ensure_ascii", a.isEmpty() ? false : a.get(0)));
                Object seps = kw.getOrDefault("separators", a.size() > 2 ? a.get(2) : null);
                String itemSep = indent == null ? ", " : ",", keySep = ": ";
                if (seps instanceof List<?> l && l.size() == 2) { itemSep = str(l.get(0)); keySep = str(l.get(1)); }
                String ind = indent == null ? null : indent instanceof String x ? x : " ".repeat((int) toLong(indent));
                StringBuilder b = new StringBuilder();
                Json.write(b, v, ind, 0, itemSep, keySep, sortKeys, ensureAscii);
                yield b.toString();
            }
            case "length", "count" -> switch (v) {
                case String x -> (long) x.codePointCount(0, x.length());
                case Collection<?> c -> (long) c.size();
                case Map<?, ?> m -> (long) m.size();
                case Undefined u -> 0L;
                case null, default -> throw new TemplateException("object of type '" + typeName(v) + "' has no len()");
            };
            case "trim" -> strip(str(v), arg(a, 0, null), true, true);
            case "string" -> str(v);
            case "upper" -> str(v).toUpperCase(Locale.ROOT);
            case "lower" -> str(v).toLowerCase(Locale.ROOT);
            case "title" -> {   // jinja2's do_title: words start after whitespace, '-' and opening brackets
                StringBuilder b = new StringBuilder();
                boolean start = true;
                for (int i = 0; i < str(v).length(); ) {
                    int c = str(v).codePointAt(i);
                    boolean sep = Character.isWhitespace(c) || "-({[<".indexOf(c) >= 0;
                    b.appendCodePoint(sep ? c : start ? Character.toUpperCase(c) : Character.toLowerCase(c));
                    start = sep;
                    i += Character.charCount(c);
                }
                yield b.toString();
            }
            case "capitalize" -> { String x = str(v); yield x.isEmpty() ? x : x.substring(0, 1).toUpperCase(Locale.ROOT) + x.substring(1).toLowerCase(Locale.ROOT); }
            case "safe", "e", "escape" -> name.equals("safe") ? v : str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;").replace("\"", "&#34;");
            case "default", "d" -> {
                boolean bool = truthy(kw.getOrDefault("boolean", a.size() > 1 ? a.get(1) : false));
                yield (v instanceof Undefined || (bool && !truthy(v))) ? (a.isEmpty() ? kw.getOrDefault("default_value", "") : a.get(0)) : v;
            }
            case "join" -> {
                String sep = a.isEmpty() ? (String) kw.getOrDefault("d", "") : str(a.get(0));
                Object attr = kw.getOrDefault("attribute", a.size() > 1 ? a.get(1) : null);
                StringBuilder b = new StringBuilder();
                boolean first = true;
                for (Object o : iterate(v)) { if (!first) b.append(sep); first = false; b.append(str(attr == null ? o : getItem(o, attr))); }
                yield b.toString();
            }
            case "first" -> { List<Object> l = iterate(v); yield l.isEmpty() ? new Undefined("first") : l.getFirst(); }
            case "last" -> { List<Object> l = iterate(v); yield l.isEmpty() ? new Undefined("last") : l.getLast(); }
            case "list" -> iterate(v);
            case "reverse" -> v instanceof String x ? new StringBuilder(x).reverse().toString() : iterate(v).reversed();
            case "items" -> v instanceof Undefined ? List.of() : call(method(v, "items"), List.of(), Map.of());
            case "int" -> switch (v) {
                case Long l -> l;
                case Double d -> (long) (double) d;
                case Boolean b -> b ? 1L : 0L;
                case String x -> { try { yield Long.parseLong(x.strip()); } catch (NumberFormatException e) { try { yield (long) Double.parseDouble(x.strip()); } catch (NumberFormatException e2) { yield a.isEmpty() ? 0L : a.get(0); } } }
                case null, default -> a.isEmpty() ? 0L : a.get(0);
            };
            case "float" -> switch (v) {
                case Long l -> (double) l;
                case Double d -> d;
                case String x -> { try { yield Double.parseDouble(x.strip()); } catch (NumberFormatException e) { yield a.isEmpty() ? 0.0 : a.get(0); } }
                case null, default -> a.isEmpty() ? 0.0 : a.get(0);
            };
            case "abs" -> v instanceof Double d ? Math.abs(d) : Math.abs(toLong(v));
            case "round" -> {
                long prec = a.isEmpty() ? (long) kw.getOrDefault("precision", 0L) : toLong(a.get(0));
                yield new BigDecimal(toDouble(v)).setScale((int) prec, java.math.RoundingMode.HALF_EVEN).doubleValue();
            }
            case "replace" -> str(v).replace(str(a.get(0)), str(a.get(1)));
            case "indent" -> {
                Object w = kw.getOrDefault("width", a.isEmpty() ? 4L : a.get(0));
                String pad = w instanceof String x ? x : " ".repeat((int) toLong(w));
                boolean first = truthy(kw.getOrDefault("first", a.size() > 1 ? a.get(1) : false));
                boolean blank = truthy(kw.getOrDefault("blank", a.size() > 2 ? a.get(2) : false));
                String[] lines = str(v).split("\n", -1);
                StringBuilder b = new StringBuilder();
                for (int i = 0; i < lines.length; i++) {
                    if (i > 0) b.append('\n');
                    if ((i > 0 || first) && (blank || !lines[i].isBlank())) b.append(pad);
                    b.append(lines[i]);
                }
                yield b.toString();
            }
            case "unique" -> { List<Object> r = new ArrayList<>(); for (Object o : iterate(v)) if (r.stream().noneMatch(x -> pyEquals(x, o))) r.add(o); yield r; }
            case "dictsort" -> {
                List<Object> r = new ArrayList<>(iterate(filter("items", v, List.of(), Map.of(), s)));
                r.sort((x, y) -> str(((List<?>) x).get(0)).compareTo(str(((List<?>) y).get(0))));
                yield r;
            }
            case "sort" -> {
                Object attr = kw.get("attribute");
                List<Object> r = new ArrayList<>(iterate(v));
                r.sort((x, y) -> {
                    Object p = attr == null ? x : getItem(x, attr), q = attr == null ? y : getItem(y, attr);
                    return (Boolean) compareOp("<", p, q) ? -1 : pyEquals(p, q) ? 0 : 1;
                });
                if (truthy(kw.getOrDefault("reverse", a.isEmpty() ? false : a.get(0)))) java.util.Collections.reverse(r);
                yield r;
            }
            case "map" -> {
                List<Object> r = new ArrayList<>();
                for (Object o : iterate(v)) {
                    if (kw.containsKey("attribute")) {
                        Object x = getItem(o, kw.get("attribute"));
                        r.add(x instanceof Undefined && kw.containsKey("default") ? kw.get("default") : x);
                    } else r.add(filter(str(a.get(0)), o, a.subList(1, a.size()), Map.of(), s));
                }
                yield r;
            }
            case "select", "reject", "selectattr", "rejectattr" -> {
                boolean attr = name.endsWith("attr"), keep = name.startsWith("select");
                List<Object> r = new ArrayList<>();
                for (Object o : iterate(v)) {
                    Object x = attr ? getItem(o, a.get(0)) : o;
                    int t = attr ? 1 : 0;
                    boolean ok = a.size() > t ? test(str(a.get(t)), x, a.subList(t + 1, a.size()), s) : truthy(x);
                    if (ok == keep) r.add(o);
                }
                yield r;
            }
            case "wordcount" -> WORD.matcher(str(v)).results().count();
            case "batch" -> {
                int n = (int) toLong(a.get(0));
                List<Object> r = new ArrayList<>(), cur = null;
                for (Object o : iterate(v)) { if (cur == null || cur.size() == n) { cur = new ArrayList<>(); r.add(cur); } cur.add(o); }
                yield r;
            }
            default -> throw new TemplateException("no filter named '" + name + "'");
        };
    }

    /** Python's {@code json.dumps}. */
    static final class Json {
        static void write(StringBuilder b, Object v, String indent, int level, String itemSep, String keySep, boolean sortKeys, boolean ascii) {
            switch (v) {
                case null -> b.append("null");
                case Undefined u -> throw new TemplateException("Object of type Undefined is not JSON serializable");
                case Boolean x -> b.append(x ? "true" : "false");
                case Long x -> b.append(x);
                case Double x -> b.append(Double.isNaN(x) ? "NaN" : Double.isInfinite(x) ? (x > 0 ? "Infinity" : "-Infinity") : pyFloat(x));
                case String x -> string(b, x, ascii);
                case Map<?, ?> m -> {
                    if (m.isEmpty()) { b.append("{}"); return; }
                    List<Object> keys = new ArrayList<>(m.keySet());
                    if (sortKeys) keys.sort((x, y) -> str(x).compareTo(str(y)));
                    b.append('{');
                    for (int i = 0; i < keys.size(); i++) {
                        if (i > 0) b.append(itemSep);
                        newline(b, indent, level + 1);
                        string(b, str(keys.get(i)), ascii);
                        b.append(keySep);
                        write(b, m.get(keys.get(i)), indent, level + 1, itemSep, keySep, sortKeys, ascii);
                    }
                    newline(b, indent, level);
                    b.append('}');
                }
                case Collection<?> c -> {
                    if (c.isEmpty()) { b.append("[]"); return; }
                    b.append('[');
                    int i = 0;
                    for (Object o : c) {
                        if (i++ > 0) b.append(itemSep);
                        newline(b, indent, level + 1);
                        write(b, o, indent, level + 1, itemSep, keySep, sortKeys, ascii);
                    }
                    newline(b, indent, level);
                    b.append(']');
                }
                default -> throw new TemplateException("Object of type " + typeName(v) + " is not JSON serializable");
            }
        }

        private static void newline(StringBuilder b, String indent, int level) {
            if (indent != null) b.append('\n').append(indent.repeat(level));
        }

        static void string(StringBuilder b, String s, boolean ascii) {
            b.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    case '\b' -> b.append("\\b");
                    case '\f' -> b.append("\\f");
                    default -> {
                        if (c < 0x20 || (ascii && c > 0x7e)) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                    }
                }
            }
            b.append('"');
        }
    }

    /** Python's {@code datetime.strftime} for the directives templates use. */
    static String strftime(String fmt, LocalDateTime t) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%' || i + 1 >= fmt.length()) { b.append(c); continue; }
            char d = fmt.charAt(++i);
            switch (d) {
                case 'd' -> b.append(String.format("%02d", t.getDayOfMonth()));
                case 'm' -> b.append(String.format("%02d", t.getMonthValue()));
                case 'Y' -> b.append(String.format("%04d", t.getYear()));
                case 'y' -> b.append(String.format("%02d", t.getYear() % 100));
                case 'H' -> b.append(String.format("%02d", t.getHour()));
                case 'I' -> b.append(String.format("%02d", (t.getHour() + 11) % 12 + 1));
                case 'M' -> b.append(String.format("%02d", t.getMinute()));
                case 'S' -> b.append(String.format("%02d", t.getSecond()));
                case 'p' -> b.append(t.getHour() < 12 ? "AM" : "PM");
                case 'j' -> b.append(String.format("%03d", t.getDayOfYear()));
                case 'b' -> b.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> b.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case '%' -> b.append('%');
                default -> b.append('%').append(d);
            }
        }
        return b.toString();
    }
}
