package dev.bdserve.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import dev.bdserve.server.Jinja.Fn;
import dev.bdserve.server.Jinja.Namespace;
import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Tuple;

import static dev.bdserve.server.PyValues.*;

/**
 * Python's methods of str, dict and list that chat templates call ({@code s.strip()}, {@code m.items()},
 * {@code l.index(x)}, ...), as {@link Fn}s bound to their value, and the whitespace rules of Python's str that
 * they and {@link JinjaLexer} share.
 */
final class PyMethods {
    private PyMethods() {}

    /** Argument {@code i}, which must be a string; {@code dflt} when it is absent or None. */
    static String arg(List<Object> a, int i, String dflt) {
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
                case "isspace" -> (Fn) (a, k) -> !s.isEmpty() && s.chars().allMatch(PyMethods::isSpace);
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

}
