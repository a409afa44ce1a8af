package dev.bdserve.server;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import dev.bdserve.server.Jinja.TemplateException;
import dev.bdserve.server.Jinja.Undefined;

import static dev.bdserve.server.PyValues.pyFloat;
import static dev.bdserve.server.PyValues.str;
import static dev.bdserve.server.PyValues.typeName;

/** Python's {@code json.dumps}. */
final class TemplateJson {
    private TemplateJson() {}
    static void write(StringBuilder b, Object v, String indent, int level, String itemSep, String keySep, boolean sortKeys, boolean ascii) {
        switch (v) {
            case null -> b.append("null");
            case Undefined u -> throw new TemplateException("Object of type Undefined is not JSON serializable");
            case Boolean x -> b.append(x ? "true" : "false");
            case Long x -> b.append(x);
            case Double x -> b.append(Double.isNaN(x) ? "NaN" : Double.isInfinite(x) ? (x > 0 ? "Infinity" : "-Infinity") : pyFloat(x));
            case String x -> string(b, x, ascii);
            case Map<?, ?> m -> {
                if (m.isEmpty()) { b.append("{}"); return; }
                List<Object> keys = new ArrayList<>(m.keySet());
                if (sortKeys) keys.sort((x, y) -> str(x).compareTo(str(y)));
                b.append('{');
                for (int i = 0; i < keys.size(); i++) {
                    if (i > 0) b.append(itemSep);
                    newline(b, indent, level + 1);
                    string(b, str(keys.get(i)), ascii);
                    b.append(keySep);
                    write(b, m.get(keys.get(i)), indent, level + 1, itemSep, keySep, sortKeys, ascii);
                }
                newline(b, indent, level);
                b.append('}');
            }
            case Collection<?> c -> {
                if (c.isEmpty()) { b.append("[]"); return; }
                b.append('[');
                int i = 0;
                for (Object o : c) {
                    if (i++ > 0) b.append(itemSep);
                    newline(b, indent, level + 1);
                    write(b, o, indent, level + 1, itemSep, keySep, sortKeys, ascii);
                }
                newline(b, indent, level);
                b.append(']');
            }
            default -> throw new TemplateException("Object of type " + typeName(v) + " is not JSON serializable");
        }
    }

    private static void newline(StringBuilder b, String indent, int level) {
        if (indent != null) b.append('\n').append(indent.repeat(level));
    }

    static void string(StringBuilder b, String s, boolean ascii) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20 || (ascii && c > 0x7e)) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        b.append('"');
    }
}
