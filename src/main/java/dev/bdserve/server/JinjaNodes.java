package dev.bdserve.server;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import dev.bdserve.server.Jinja.Fn;
import dev.bdserve.server.Jinja.Namespace;
import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Undefined;

import static dev.bdserve.server.PyValues.iterate;
import static dev.bdserve.server.PyValues.str;
import static dev.bdserve.server.PyValues.truthy;

/**
 * The tree a {@link Jinja} template parses to, and how it runs: statements ({@link Node}) write to the output,
 * expressions ({@link Expr}) evaluate to values, both against a {@link Scope} of variables. {@link JinjaParser}
 * builds the tree; loops, assignments and macros follow jinja2's scoping (a loop's or macro's variables stay inside it,
 * only a {@code namespace()} carries assignments out).
 */
final class JinjaNodes {
    private JinjaNodes() {}

    /** The variables of one level (the template, a loop pass, a macro call), looked up through the enclosing ones. */
    static final class Scope {
        final Scope parent;
        final Map<String, Object> vars = new HashMap<>();
        Scope(Scope parent) { this.parent = parent; }

        Object get(String name) {
            for (Scope s = this; s != null; s = s.parent) if (s.vars.containsKey(name)) return s.vars.get(name);
            return new Undefined(name);
        }
    }

    /** {@code {% break %}} and {@code {% continue %}}: thrown to the innermost for-loop, without a stack trace. */
    static final class Break extends RuntimeException { Break() { super(null, null, false, false); } }
    static final class Continue extends RuntimeException { Continue() { super(null, null, false, false); } }

    /** A statement: writes its output. */
    interface Node { void exec(Scope s, StringBuilder out); }

    /** An expression: evaluates to a value. */
    interface Expr { Object eval(Scope s); }

    record Block(List<Node> body) implements Node {
        public void exec(Scope s, StringBuilder out) { for (Node n : body) n.exec(s, out); }
    }

    record Text(String text) implements Node {
        public void exec(Scope s, StringBuilder out) { out.append(text); }
    }

    record Output(Expr e) implements Node {
        public void exec(Scope s, StringBuilder out) { out.append(str(e.eval(s))); }
    }

    record If(List<Expr> conds, List<Node> bodies, Node otherwise) implements Node {
        public void exec(Scope s, StringBuilder out) {
            for (int i = 0; i < conds.size(); i++) if (truthy(conds.get(i).eval(s))) { bodies.get(i).exec(s, out); return; }
            if (otherwise != null) otherwise.exec(s, out);
        }
    }

    record For(List<String> targets, Expr iter, Expr filter, Node body, Node otherwise) implements Node {
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

    record Set(String name, String attr, Expr value, Node body) implements Node {
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

    record Macro(String name, List<String> params, List<Expr> defaults, Node body) implements Node {
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
}
