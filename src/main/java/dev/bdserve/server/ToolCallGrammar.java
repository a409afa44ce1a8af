package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.structured.Constraint;
import dev.bdserve.structured.ConstraintException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The constraint for {@code tool_choice} "required" or a named function: the output must be the parser format's
 * call text, each call's name one of the callable functions and its arguments valid for that function's
 * {@code parameters}. The call object is a JSON schema ({@code {"name": const, "arguments"|"parameters": $ref}},
 * one branch of an {@code anyOf} per function, each function's schema moved under {@code $defs} with its
 * {@code $ref}s rewritten); its GBNF's root becomes the rule {@code toolcall-json}, wrapped in the format's text:
 * <ul>
 *   <li>hermes: {@code <tool_call>\n...\n</tool_call>}, several separated by a newline;</li>
 *   <li>llama3_json: the objects, several separated by {@code ;};</li>
 *   <li>mistral: the JSON list only: {@code [TOOL_CALLS]} is a special token, which constrained decoding never
 *       emits, so the parser reads a constrained output as starting inside the list.</li>
 * </ul>
 * Compiled constraints are cached by their GBNF text (their masks are memoized per constraint).
 */
final class ToolCallGrammar {
    private ToolCallGrammar() {}

    private static final int CACHE = 64;
    private static final Map<String, Constraint> cache = new LinkedHashMap<>(16, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<String, Constraint> e) { return size() > CACHE; }
    };

    /** The constraint; a 400 naming the tool when a callable function's parameters schema is not supported. */
    static Constraint constraint(ToolChoice tc, ToolCallParser parser) {
        List<String> names = new ArrayList<>(tc.functions().keySet());
        for (String name : tc.callable().keySet()) {
            try {
                cached("schema:" + tc.functions().get(name).toString(), () -> Constraint.jsonSchema(tc.functions().get(name)));
            } catch (ConstraintException e) {
                throw ApiException.badParam("tools", "tools[" + names.indexOf(name) + "].function.parameters: " + e.getMessage()
                        + (e.location() == null ? "" : " (at " + e.location() + ")"));
            }
        }
        String gbnf = gbnf(tc, parser);
        try {
            return cached(gbnf, () -> Constraint.grammar(gbnf));
        } catch (ConstraintException e) {
            throw new IllegalStateException("the tool-call grammar does not compile: " + e.getMessage(), e);
        }
    }

    /** The GBNF text of the constraint (its parameters schemas must compile). */
    static String gbnf(ToolChoice tc, ToolCallParser parser) {
        String key = parser instanceof Llama3JsonToolParser ? "parameters" : "arguments";
        String json;
        try {
            json = Constraint.jsonSchema(callSchema(tc.callable(), key)).gbnf();
        } catch (ConstraintException e) {
            throw ApiException.badParam("tools", "tools: the call schema does not compile: " + e.getMessage());
        }
        int nl = json.indexOf('\n');
        String first = json.substring(0, nl);
        if (!first.startsWith("root ::= ") || !first.endsWith(" ws"))
            throw new IllegalStateException("unexpected JSON schema grammar root: " + first);
        String body = "toolcall-json ::= " + first.substring("root ::= ".length(), first.length() - " ws".length()) + json.substring(nl);
        boolean many = tc.maxCalls() > 1;
        String root = switch (parser) {
            case HermesToolParser h -> "root ::= toolcall-block" + (many ? " ( \"\\n\" toolcall-block )*" : "") + "\n"
                    + "toolcall-block ::= \"<tool_call>\\n\" toolcall-json \"\\n</tool_call>\"\n";
            case Llama3JsonToolParser l -> "root ::= toolcall-json" + (many ? " ( \";\" \" \"? toolcall-json )*" : "") + "\n";
            case MistralToolParser m -> "root ::= \"[\" toolcall-json" + (many ? " ( \",\" \" \"? toolcall-json )*" : "") + " \"]\"\n";
        };
        return root + body;
    }

    /** A schema of one call object: the name of one of {@code fns} and its arguments under {@code key}. */
    static ObjectNode callSchema(Map<String, JsonNode> fns, String key) {
        ObjectNode s = Json.MAPPER.createObjectNode();
        ObjectNode defs = Json.MAPPER.createObjectNode();
        ArrayNode any = Json.MAPPER.createArrayNode();
        int i = 0;
        for (var e : fns.entrySet()) {
            String def = "tool" + i++;
            defs.set(def, rebase(e.getValue().deepCopy(), "#/$defs/" + def));
            ObjectNode branch = any.addObject();
            branch.put("type", "object");
            ObjectNode props = branch.putObject("properties");
            props.putObject("name").put("const", e.getKey());
            props.putObject(key).put("$ref", "#/$defs/" + def);
            branch.putArray("required").add("name").add(key);
            branch.put("additionalProperties", false);
        }
        if (any.size() == 1) s.setAll((ObjectNode) any.get(0));
        else s.set("anyOf", any);
        s.set("$defs", defs);
        return s;
    }

    /** Rewrites local {@code $ref}s ("#", "#/...") of a schema moved to {@code base}. */
    private static JsonNode rebase(JsonNode n, String base) {
        if (n.isObject()) {
            ObjectNode o = (ObjectNode) n;
            JsonNode ref = o.get("$ref");
            if (ref != null && ref.isTextual() && ref.asText().startsWith("#")) o.put("$ref", base + ref.asText().substring(1));
            for (var e : o.properties()) if (!e.getKey().equals("$ref")) rebase(e.getValue(), base);
        } else if (n.isArray()) for (JsonNode x : n) rebase(x, base);
        return n;
    }

    private interface Compile { Constraint get() throws ConstraintException; }

    private static Constraint cached(String key, Compile c) throws ConstraintException {
        synchronized (cache) {
            Constraint hit = cache.get(key);
            if (hit != null) return hit;
        }
        Constraint made = c.get();
        synchronized (cache) { cache.put(key, made); }
        return made;
    }
}
