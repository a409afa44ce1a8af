package dev.bdserve.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;

import java.security.SecureRandom;
import java.util.Locale;

/**
 * Reads a model's tool calls out of its output text, in one model family's format. Chosen by
 * {@code --tool-call-parser} or from the chat template ({@link #detect}). Stateless and shared; the state of one
 * output lives in its {@link ToolCallStreamer}.
 */
abstract sealed class ToolCallParser permits HermesToolParser, Llama3JsonToolParser, MistralToolParser {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final ObjectReader STRICT = Json.MAPPER.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final String ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /** The option's name for this format. */
    abstract String name();

    /**
     * Scans {@code text}. {@code constrained}: the output was constrained to this format's call text without its
     * special-token marker (see {@link ToolCallGrammar}), so it starts inside the call list.
     */
    abstract ToolCallScan scan(String text, boolean constrained);

    /** A fresh call id: {@code call_} and 24 random letters and digits. */
    String newId() { return "call_" + random(24); }

    static String random(int n) {
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) sb.append(ALNUM.charAt(RANDOM.nextInt(ALNUM.length())));
        return sb.toString();
    }

    /** The parser named {@code name} (llama3_json, hermes, mistral); null for auto. */
    static ToolCallParser named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "llama3_json" -> new Llama3JsonToolParser();
            case "hermes" -> new HermesToolParser();
            case "mistral" -> new MistralToolParser();
            case "auto" -> null;
            default -> throw new IllegalArgumentException("unknown tool-call parser '" + name + "' (expected llama3_json, hermes, mistral or auto)");
        };
    }

    /**
     * The format a chat template's tool calls use, from its text: {@code <tool_call>} → hermes, {@code [TOOL_CALLS]}
     * → mistral, {@code <|python_tag|>} or a {@code "parameters"} JSON example → llama3_json; null when none
     * matches (tool calls then are not parsed).
     */
    static ToolCallParser detect(String template) {
        if (template == null) return null;
        if (template.contains("<tool_call>")) return new HermesToolParser();
        if (template.contains("[TOOL_CALLS]")) return new MistralToolParser();
        if (template.contains("<|python_tag|>") || template.contains("\"parameters\"")) return new Llama3JsonToolParser();
        return null;
    }

    /**
     * A call from a JSON object {@code {"name": ..., "<argsKey>": {...}}} (arguments also under the other of
     * "arguments"/"parameters"); null when it is not one.
     */
    static ToolCallScan.Call call(String json) {
        JsonNode n;
        try {
            n = STRICT.readTree(json);
        } catch (JsonProcessingException e) {
            return null;
        }
        if (n == null || !n.isObject() || !n.path("name").isTextual() || n.get("name").asText().isEmpty()) return null;
        JsonNode args = n.has("arguments") ? n.get("arguments") : n.get("parameters");
        if (args == null) return null;
        String text;
        if (args.isObject()) text = args.toString();
        else if (args.isTextual()) {
            try {
                JsonNode parsed = STRICT.readTree(args.asText());
                if (parsed == null || !parsed.isObject()) return null;
                text = parsed.toString();
            } catch (JsonProcessingException e) {
                return null;
            }
        } else return null;
        return new ToolCallScan.Call(n.get("name").asText(), text);
    }

    /**
     * The end (exclusive) of the JSON object or array starting at {@code from}, or -1 when the text ends first.
     * Only brackets outside strings count; whether the value is valid JSON is for the caller's parser to say.
     */
    static int jsonEnd(String s, int from) {
        int depth = 0;
        boolean inString = false;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (inString) {
                if (c == '\\') i++;
                else if (c == '"') inString = false;
            } else if (c == '"') inString = true;
            else if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return -1;
    }

    /** Where in {@code s[from..]} a suffix starts that is a proper prefix of {@code marker} (s.length() if none). */
    static int holdBack(String s, int from, String marker) {
        for (int k = Math.max(from, s.length() - marker.length() + 1); k < s.length(); k++)
            if (marker.startsWith(s.substring(k))) return k;
        return s.length();
    }

    static int skipSpace(String s, int i) {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        return i;
    }
}
