package dev.bdserve.server;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

import dev.bdserve.server.Jinja.Fn;
import dev.bdserve.server.Jinja.Namespace;
import dev.bdserve.server.JinjaNodes.Scope;
import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Tuple;
import dev.bdserve.server.Jinja.Undefined;

/**
 * Python's semantics for the values a {@link Jinja} template handles (String, Long, Double, Boolean, None, List, Map):
 * truthiness, {@code str()} and {@code repr()}, arithmetic and comparisons, indexing and slicing, and the string,
 * dict and list methods and filters chat templates call.
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
                case "isspace" -> (Fn) (a, k) -> !s.isEmpty() && s.chars().allMatch(PyValues::isSpace);
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

    static String rstrip(String s) { return strip(s, null, false, true); }

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
                TemplateJson.write(b, v, ind, 0, itemSep, keySep, sortKeys, ensureAscii);
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
}
