package dev.bdserve.server;

import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

import static dev.bdserve.server.PyValues.*;

/**
 * The subset of Jinja2 that chat templates use, with the semantics of Python's jinja2 under Hugging Face's
 * settings ({@code trim_blocks}, {@code lstrip_blocks}, loop controls, {@code raise_exception},
 * {@code strftime_now}, {@code tojson} with {@code ensure_ascii=False}): Python truthiness, string and dict
 * methods, slicing, {@code namespace()}, for-loops with {@code loop.*}, tests and the common filters. Values are
 * plain Java objects: String, Long, Double, Boolean, null (None), List, Map. This class lexes, parses and runs a
 * template; Python's rules for the values are {@link PyValues}, {@code json.dumps} is {@link TemplateJson}.
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
                    if ((l > 0 || lineStarting) && text.substring(l).chars().allMatch(PyValues::isSpace)) text = text.substring(0, l);
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

    static final class Scope {
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
