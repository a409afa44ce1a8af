package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;

/** Strictly typed reading of request fields: a wrong type or range is a 400 naming the parameter. */
final class Params {
    private Params() {}

    static JsonNode field(ObjectNode body, String name) {
        JsonNode n = body.get(name);
        return n == null || n.isNull() ? null : n;
    }

    static Integer optInt(ObjectNode body, String name, long min, long max) {
        JsonNode n = field(body, name);
        if (n == null) return null;
        if (!n.isIntegralNumber() && !(n.isFloatingPointNumber() && n.asDouble() == Math.rint(n.asDouble()) && !n.isBigDecimal()))
            throw ApiException.badParam(name, name + ": expected an integer, got " + describe(n));
        if (!n.canConvertToLong() || n.asLong() < min || n.asLong() > max)
            throw ApiException.badParam(name, name + " must be between " + min + " and " + max + ", got " + n.asText());
        return (int) n.asLong();
    }

    static Double optDouble(ObjectNode body, String name, double min, double max) {
        JsonNode n = field(body, name);
        if (n == null) return null;
        if (!n.isNumber()) throw ApiException.badParam(name, name + ": expected a number, got " + describe(n));
        double v = n.asDouble();
        if (!(v >= min && v <= max)) throw ApiException.badParam(name, name + " must be between " + min + " and " + max + ", got " + n.asText());
        return v;
    }

    static Long optLong(ObjectNode body, String name) {
        JsonNode n = field(body, name);
        if (n == null) return null;
        if (!n.isIntegralNumber() || !n.canConvertToLong()) throw ApiException.badParam(name, name + ": expected a 64-bit integer, got " + describe(n));
        return n.asLong();
    }

    static boolean optBool(ObjectNode body, String name, boolean dflt) {
        JsonNode n = field(body, name);
        if (n == null) return dflt;
        if (!n.isBoolean()) throw ApiException.badParam(name, name + ": expected a boolean, got " + describe(n));
        return n.asBoolean();
    }

    static String optString(ObjectNode body, String name) {
        JsonNode n = field(body, name);
        if (n == null) return null;
        if (!n.isTextual()) throw ApiException.badParam(name, name + ": expected a string, got " + describe(n));
        return n.asText();
    }

    /** stop: a string or a list of strings (at most 16 of at most 1024 chars). */
    static List<String> stop(ObjectNode body) {
        JsonNode n = field(body, "stop");
        List<String> out = new ArrayList<>();
        if (n == null) return out;
        if (n.isTextual()) out.add(n.asText());
        else if (n.isArray()) {
            for (JsonNode s : n) {
                if (!s.isTextual()) throw ApiException.badParam("stop", "stop: expected a string or a list of strings, got a list holding " + describe(s));
                out.add(s.asText());
            }
        } else throw ApiException.badParam("stop", "stop: expected a string or a list of strings, got " + describe(n));
        if (out.size() > 16) throw ApiException.badParam("stop", "stop: at most 16 stop strings, got " + out.size());
        for (String s : out) {
            if (s.isEmpty()) throw ApiException.badParam("stop", "stop strings must not be empty");
            if (s.length() > 1024) throw ApiException.badParam("stop", "stop strings must be at most 1024 characters");
        }
        return out;
    }

    static String describe(JsonNode n) {
        if (n.isTextual()) return "a string";
        if (n.isBoolean()) return "a boolean";
        if (n.isIntegralNumber()) return "the integer " + abbreviate(n.asText());
        if (n.isNumber()) return "the number " + abbreviate(n.asText());
        if (n.isArray()) return "a list";
        if (n.isObject()) return "an object";
        return n.getNodeType().toString().toLowerCase();
    }

    private static String abbreviate(String s) { return s.length() > 40 ? s.substring(0, 40) + "…" : s; }
}
