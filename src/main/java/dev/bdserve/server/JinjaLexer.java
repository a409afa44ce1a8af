package dev.bdserve.server;

import java.util.ArrayList;
import java.util.List;

import dev.bdserve.server.Jinja.TemplateException;

import static dev.bdserve.server.PyMethods.isSpace;
import static dev.bdserve.server.PyMethods.rstrip;

/**
 * Splits a {@link Jinja} template into tokens as jinja2's lexer does: the text between tags, with
 * {@code trim_blocks}, {@code lstrip_blocks} and the {@code -} and {@code +} modifiers applied, and the names,
 * literals and operators inside {@code {{ }}} and {@code {% %}}. Comments are dropped, {@code {% raw %}} stays text.
 */
final class JinjaLexer {
    /** A token's kind: template text, the start or end of a tag, or a piece of an expression. */
    enum T { TEXT, VAR_START, BLOCK_START, END, NAME, STRING, INT, FLOAT, OP, EOF }

    /** One token: {@code text} of text, names and operators, {@code value} of literals, and its line. */
    record Tok(T type, String text, Object value, int line) {}

    private final String src;
    private final List<Tok> out = new ArrayList<>();
    private int line = 1;

    JinjaLexer(String src) { this.src = src; }

    /** The template's tokens, ending with {@link T#EOF}. */
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
                if ((l > 0 || lineStarting) && text.substring(l).chars().allMatch(PyMethods::isSpace)) text = text.substring(0, l);
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
    private int raw(int pos) {
        var m = java.util.regex.Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%}").matcher(src);
        if (!m.find(pos)) throw new TemplateException("line " + line + ": missing endraw");
        out.removeLast(); out.removeLast(); out.removeLast();   // the raw tag's tokens
        emitText(src.substring(pos, m.start()));
        return m.end();
    }

    private void emitText(String t) { if (!t.isEmpty()) out.add(new Tok(T.TEXT, t, null, line)); }

    private int nextOpen(int from) {
        int best = -1;
        for (String o : new String[]{"{{", "{%", "{#"}) {
            int i = src.indexOf(o, from);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    private int findClose(int from, String close) {
        char q = 0;
        for (int i = from; i < src.length() - 1; i++) {
            char c = src.charAt(i);
            if (q != 0) { if (c == '\\') i++; else if (c == q) q = 0; }
            else if (c == '\'' || c == '"') q = c;
            else if (src.startsWith(close, i)) return i;
        }
        return -1;
    }

    private static int count(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) if (s.charAt(i) == '\n') n++;
        return n;
    }

    private static final String[] OPS = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "~", "="};

    private void lexExpr(String s) {
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
