package dev.bdserve.server;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import dev.bdserve.server.Jinja.Fn;
import dev.bdserve.server.Jinja.Namespace;
import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Tuple;
import dev.bdserve.server.Jinja.Undefined;

import static dev.bdserve.server.PyMethods.method;

/**
 * Python's semantics for the values a {@link Jinja} template handles (String, Long, Double, Boolean, None, List, Map):
 * truthiness, {@code str()} and {@code repr()}, arithmetic and comparisons, attributes, indexing, slicing and calls.
 * The methods of str, dict and list are {@link PyMethods}, jinja2's filters and tests {@link JinjaFilters}.
 */
final class PyValues {
    private PyValues() {}

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

    static double toDouble(Object v) { return v instanceof Double d ? d : toLong(v); }

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
}
