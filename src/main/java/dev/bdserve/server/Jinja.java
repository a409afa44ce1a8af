package dev.bdserve.server;

import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

import dev.bdserve.server.JinjaNodes.Node;
import dev.bdserve.server.JinjaNodes.Scope;

import static dev.bdserve.server.PyValues.*;

/**
 * The subset of Jinja2 that chat templates use, with the semantics of Python's jinja2 under Hugging Face's
 * settings ({@code trim_blocks}, {@code lstrip_blocks}, loop controls, {@code raise_exception},
 * {@code strftime_now}, {@code tojson} with {@code ensure_ascii=False}): Python truthiness, string and dict
 * methods, slicing, {@code namespace()}, for-loops with {@code loop.*}, tests and the common filters. Values are
 * plain Java objects: String, Long, Double, Boolean, null (None), List, Map. This class is the entry point (a template
 * is parsed once, rendered many times), the values' own types and the globals; {@link JinjaLexer} lexes,
 * {@link JinjaParser} and {@link JinjaExprParser} parse, {@link JinjaNodes} run a template. Python's rules for the
 * values are {@link PyValues}, their methods {@link PyMethods}, filters and tests {@link JinjaFilters},
 * {@code json.dumps} is {@link TemplateJson}.
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
        this.root = new JinjaParser(new JinjaLexer(source).tokens()).parseTemplate();
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
