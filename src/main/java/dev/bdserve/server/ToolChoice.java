package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A chat request's {@code tools}, {@code tool_choice} and {@code parallel_tool_calls}, validated.
 *
 * @param functions the tools' functions by name, each with its {@code parameters} schema (an empty object
 *                  schema when absent), in request order
 * @param mode      "none", "auto", "required" or "named"
 * @param named     the function {@code tool_choice} names, or null
 * @param parallel  whether the model may make more than one call
 */
record ToolChoice(Map<String, JsonNode> functions, String mode, String named, boolean parallel) {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.\\-]{1,64}");

    /** True when the output is parsed for calls. */
    boolean parses() { return !mode.equals("none") && !functions.isEmpty(); }

    /** True when the output is constrained to calls (required, or a named function). */
    boolean constrained() { return mode.equals("required") || mode.equals("named"); }

    /** At most this many calls are returned. */
    int maxCalls() { return parallel && !mode.equals("named") ? Integer.MAX_VALUE : 1; }

    /** The functions a constrained output may call: all of them, or the named one. */
    Map<String, JsonNode> callable() { return named == null ? functions : Map.of(named, functions.get(named)); }

    /** Reads the fields of a chat body; null when it has neither tools nor tool_choice. */
    static ToolChoice parse(ObjectNode b) {
        JsonNode tools = Params.field(b, "tools");
        JsonNode choice = Params.field(b, "tool_choice");
        boolean parallel = Params.optBool(b, "parallel_tool_calls", true);
        if (tools == null && choice == null) return null;
        Map<String, JsonNode> fns = new LinkedHashMap<>();
        if (tools != null) {
            if (!tools.isArray()) throw ApiException.badParam("tools", "tools: expected a list of tool definitions, got " + Params.describe(tools));
            for (int i = 0; i < tools.size(); i++) {
                JsonNode t = tools.get(i);
                String at = "tools[" + i + "]";
                if (!t.isObject()) throw ApiException.badParam("tools", at + ": expected an object, got " + Params.describe(t));
                if (!"function".equals(t.path("type").asText(null)))
                    throw ApiException.badParam("tools", at + ".type: only \"function\" tools are supported");
                JsonNode f = t.get("function");
                if (f == null || !f.isObject()) throw ApiException.badParam("tools", at + ".function: expected an object");
                JsonNode name = f.get("name");
                if (name == null || !name.isTextual()) throw ApiException.badParam("tools", at + ".function.name: this field is required and must be a string");
                if (!NAME.matcher(name.asText()).matches())
                    throw ApiException.badParam("tools", at + ".function.name: '" + name.asText() + "' must be 1 to 64 letters, digits, '_', '-' or '.'");
                if (fns.containsKey(name.asText()))
                    throw ApiException.badParam("tools", at + ".function.name: '" + name.asText() + "' is defined twice");
                JsonNode params = f.get("parameters");
                if (params == null || params.isNull()) params = Json.MAPPER.createObjectNode().put("type", "object");
                else if (!params.isObject())
                    throw ApiException.badParam("tools", at + ".function.parameters: expected a JSON schema object, got " + Params.describe(params));
                fns.put(name.asText(), params);
            }
        }
        String mode, named = null;
        if (choice == null) mode = fns.isEmpty() ? "none" : "auto";
        else if (choice.isTextual()) {
            mode = choice.asText();
            if (!List.of("none", "auto", "required").contains(mode))
                throw ApiException.badParam("tool_choice", "tool_choice: expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}, got \"" + mode + "\"");
        } else if (choice.isObject()) {
            JsonNode n = choice.path("function").get("name");
            if (!"function".equals(choice.path("type").asText(null)) || n == null || !n.isTextual())
                throw ApiException.badParam("tool_choice", "tool_choice: a named choice must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
            mode = "named";
            named = n.asText();
            if (!fns.containsKey(named))
                throw ApiException.badParam("tool_choice", "tool_choice: no function named '" + named + "' in tools"
                        + (fns.isEmpty() ? "" : " (tools: " + String.join(", ", new ArrayList<>(fns.keySet())) + ")"));
        } else throw ApiException.badParam("tool_choice", "tool_choice: expected a string or an object, got " + Params.describe(choice));
        if (mode.equals("required") && fns.isEmpty())
            throw ApiException.badParam("tool_choice", "tool_choice: \"required\" needs at least one tool in tools");
        return new ToolChoice(fns, mode, named, parallel);
    }
}
