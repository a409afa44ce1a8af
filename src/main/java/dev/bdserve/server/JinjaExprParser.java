package dev.bdserve.server;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Tuple;
import dev.bdserve.server.Jinja.Undefined;
import dev.bdserve.server.JinjaLexer.T;
import dev.bdserve.server.JinjaLexer.Tok;
import dev.bdserve.server.JinjaNodes.Expr;
import dev.bdserve.server.JinjaNodes.Scope;

import static dev.bdserve.server.JinjaFilters.filter;
import static dev.bdserve.server.JinjaFilters.test;
import static dev.bdserve.server.PyValues.*;

/**
 * Parses the expressions of a {@link Jinja} template into {@link Expr} trees, with jinja2's precedence, loosest
 * first: conditional expressions, {@code or}, {@code and}, {@code not}, chained comparisons, the arithmetic
 * operators and {@code ~}, filters and tests, unary signs, then attributes, subscripts, slices and calls. It also
 * holds the cursor over the tokens, which {@link JinjaParser} reads the template's statements with.
 */
class JinjaExprParser {
    final List<Tok> toks;
    int p;

    JinjaExprParser(List<Tok> toks) { this.toks = toks; }

    Tok peek() { return toks.get(p); }
    Tok next() { return toks.get(p++); }
    boolean isOp(String op) { Tok t = peek(); return t.type() == T.OP && t.text().equals(op); }
    boolean isName(String n) { Tok t = peek(); return t.type() == T.NAME && t.text().equals(n); }
    boolean acceptOp(String op) { if (isOp(op)) { p++; return true; } return false; }
    boolean acceptName(String n) { if (isName(n)) { p++; return true; } return false; }

    TemplateException error(String what) { return new TemplateException("line " + peek().line() + ": " + what); }

    void expectOp(String op) { if (!acceptOp(op)) throw error("expected '" + op + "'"); }
    void expectEnd() { if (next().type() != T.END) { p--; throw error("unexpected '" + describe(peek()) + "' in tag"); } }

    String name() {
        Tok t = next();
        if (t.type() != T.NAME) { p--; throw error("expected a name, got '" + describe(t) + "'"); }
        return t.text();
    }

    static String describe(Tok t) { return t.type() == T.END ? "end of tag" : t.type() == T.EOF ? "end of template" : t.text() != null ? t.text() : String.valueOf(t.value()); }

    Expr exprOrTuple() {
        Expr first = expr();
        if (!isOp(",")) return first;
        List<Expr> items = new ArrayList<>(List.of(first));
        while (acceptOp(",")) { if (peek().type() == T.END) break; items.add(expr()); }
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
            if (peek().type() == T.OP && List.of("==", "!=", "<", "<=", ">", ">=").contains(peek().text())) ops.add(next().text());
            else if (acceptName("in")) ops.add("in");
            else if (isName("not") && toks.get(p + 1).type() == T.NAME && toks.get(p + 1).text().equals("in")) { p += 2; ops.add("not in"); }
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
            String op = next().text();
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
            String op = next().text();
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
        switch (t.type()) {
            case STRING -> {
                StringBuilder b = new StringBuilder((String) t.value());
                while (peek().type() == T.STRING) b.append((String) next().value());
                String v = b.toString();
                return s -> v;
            }
            case INT, FLOAT -> { Object v = t.value(); return s -> v; }
            case NAME -> {
                switch (t.text()) {
                    case "true", "True" -> { return s -> true; }
                    case "false", "False" -> { return s -> false; }
                    case "none", "None" -> { return s -> null; }
                    default -> { String n = t.text(); return s -> s.get(n); }
                }
            }
            case OP -> {
                switch (t.text()) {
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
                String attr = t.type() == T.INT ? String.valueOf(t.value()) : t.text();
                if (t.type() != T.NAME && t.type() != T.INT) { p--; throw error("expected an attribute name"); }
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
            if (peek().type() == T.NAME && toks.get(p + 1).type() == T.OP && toks.get(p + 1).text().equals("=")) {
                String k = next().text(); p++;
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
        return switch (t.type()) {
            case STRING, INT, FLOAT -> true;
            case NAME -> !List.of("else", "or", "and", "if", "in", "not", "is").contains(t.text());
            case OP -> t.text().equals("[") || t.text().equals("{");
            default -> false;
        };
    }
}
