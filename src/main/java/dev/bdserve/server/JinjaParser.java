package dev.bdserve.server;

import java.util.ArrayList;
import java.util.List;

import dev.bdserve.server.JinjaLexer.T;
import dev.bdserve.server.JinjaLexer.Tok;
import dev.bdserve.server.JinjaNodes.Block;
import dev.bdserve.server.JinjaNodes.Break;
import dev.bdserve.server.JinjaNodes.Continue;
import dev.bdserve.server.JinjaNodes.Expr;
import dev.bdserve.server.JinjaNodes.For;
import dev.bdserve.server.JinjaNodes.If;
import dev.bdserve.server.JinjaNodes.Macro;
import dev.bdserve.server.JinjaNodes.Node;
import dev.bdserve.server.JinjaNodes.Output;
import dev.bdserve.server.JinjaNodes.Set;
import dev.bdserve.server.JinjaNodes.Text;

/**
 * Parses a {@link Jinja} template's tokens into its tree of {@link JinjaNodes}: text, {@code {{ }}} output and the
 * statements chat templates use ({@code if}, {@code for}, {@code set}, {@code macro}, {@code break},
 * {@code continue}, {@code generation}, {@code do}); the expressions inside are {@link JinjaExprParser}'s.
 */
final class JinjaParser extends JinjaExprParser {
    JinjaParser(List<Tok> toks) { super(toks); }

    Node parseTemplate() {
        Block b = parseBody(List.of());
        if (peek().type() != T.EOF) throw error("unexpected '" + toks.get(p + 1).text() + "'");
        return b;
    }

    /** Nodes up to a block tag named in {@code ends} (left unconsumed, positioned at its name) or EOF. */
    private Block parseBody(List<String> ends) {
        List<Node> nodes = new ArrayList<>();
        while (true) {
            Tok t = peek();
            switch (t.type()) {
                case EOF -> {
                    if (!ends.isEmpty()) throw error("missing '" + ends.getLast() + "'");
                    return new Block(nodes);
                }
                case TEXT -> { p++; nodes.add(new Text(t.text())); }
                case VAR_START -> { p++; Expr e = expr(); expectEnd(); nodes.add(new Output(e)); }
                case BLOCK_START -> {
                    Tok kw = toks.get(p + 1);
                    if (kw.type() == T.NAME && ends.contains(kw.text())) { p++; return new Block(nodes); }
                    p++;
                    nodes.add(statement());
                }
                default -> throw error("unexpected '" + describe(t) + "'");
            }
        }
    }

    private Node statement() {
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
}
