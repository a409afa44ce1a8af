package dev.bdserve.server;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import dev.bdserve.server.Jinja.Fn;
import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Undefined;
import dev.bdserve.server.JinjaNodes.Scope;

import static dev.bdserve.server.PyMethods.arg;
import static dev.bdserve.server.PyMethods.method;
import static dev.bdserve.server.PyMethods.strip;
import static dev.bdserve.server.PyValues.*;

/**
 * jinja2's tests ({@code x is defined}, {@code x is string}, ...) and filters ({@code x | tojson}, {@code x | trim},
 * {@code x | map(...)}, ...) as chat templates use them, over the values {@link PyValues} defines.
 */
final class JinjaFilters {
    private JinjaFilters() {}

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
