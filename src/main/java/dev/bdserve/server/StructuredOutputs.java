package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.structured.Constraint;
import dev.bdserve.structured.ConstraintException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a request's output constraint from its fields: OpenAI's {@code response_format} ({@code text},
 * {@code json_object}, {@code json_schema}), vLLM's {@code structured_outputs} ({@code json}, {@code regex},
 * {@code choice}, {@code grammar}, {@code json_object}) and vLLM's older {@code guided_json}, {@code guided_regex},
 * {@code guided_choice}, {@code guided_grammar}. At most one constraint per request; anything malformed, unknown or
 * not compilable is a 400 naming the field (and, for a bad schema, regex or grammar, where in it), so a request is
 * never silently unconstrained.
 *
 * <p>Compiled constraints are cached (least recently used first out) by kind and source text: a constraint memoizes
 * its states and masks, so requests with the same schema share that warm-up. One per server; thread-safe.
 */
final class StructuredOutputs {
    /** Compiled constraints kept by default. */
    static final int DEFAULT_CACHE = 64;

    private static final Set<String> STRUCTURED_KEYS = Set.of("json", "regex", "choice", "grammar", "json_object");
    private static final Set<String> GUIDED_IGNORED = Set.of("guided_decoding_backend");   // which backend: ours is the only one

    private final Map<String, Constraint> cache;

    StructuredOutputs(int cacheSize) {
        if (cacheSize < 1) throw new IllegalArgumentException("the constraint cache must hold at least one entry, got " + cacheSize);
        this.cache = new LinkedHashMap<>(16, 0.75f, true) {
            @Override protected boolean removeEldestEntry(Map.Entry<String, Constraint> e) { return size() > cacheSize; }
        };
    }

    /** One constraint as the request states it: its field (for messages), kind and source. */
    private record Spec(String field, String kind, JsonNode source) {}

    /** The request's constraint, or null when it asks for free text. Throws {@link ApiException} 400. */
    Constraint parse(ObjectNode body) {
        List<Spec> specs = new ArrayList<>();
        responseFormat(body, specs);
        structuredOutputs(body, specs);
        guided(body, "guided_json", "json_schema", specs);
        guided(body, "guided_regex", "regex", specs);
        guided(body, "guided_choice", "choice", specs);
        guided(body, "guided_grammar", "grammar", specs);
        for (String f : GUIDED_IGNORED) if (Params.field(body, f) != null) Params.optString(body, f);
        if (specs.isEmpty()) return null;
        if (specs.size() > 1)
            throw ApiException.badRequest("A request may have only one output constraint, got " + specs.size() + ": "
                    + String.join(", ", specs.stream().map(Spec::field).toList()) + ".");
        return compile(specs.getFirst());
    }

    /** The number of compiled constraints cached. */
    int cached() {
        synchronized (cache) { return cache.size(); }
    }

    private static void responseFormat(ObjectNode body, List<Spec> specs) {
        JsonNode rf = Params.field(body, "response_format");
        if (rf == null) return;
        if (!rf.isObject()) throw ApiException.badParam("response_format", "response_format: expected an object, got " + Params.describe(rf));
        JsonNode type = rf.get("type");
        if (type == null || !type.isTextual())
            throw ApiException.badParam("response_format", "response_format.type: expected one of \"text\", \"json_object\", \"json_schema\", got "
                    + (type == null ? "nothing" : Params.describe(type)));
        switch (type.asText()) {
            case "text" -> { }
            case "json_object" -> specs.add(new Spec("response_format", "json_object", null));
            case "json_schema" -> {
                JsonNode js = rf.get("json_schema");
                if (js == null || !js.isObject())
                    throw ApiException.badParam("response_format", "response_format.json_schema: expected an object with the schema, got "
                            + (js == null ? "nothing" : Params.describe(js)));
                JsonNode name = js.get("name");
                if (name != null && !name.isNull() && !name.isTextual())
                    throw ApiException.badParam("response_format", "response_format.json_schema.name: expected a string, got " + Params.describe(name));
                JsonNode strict = js.get("strict");
                if (strict != null && !strict.isNull() && !strict.isBoolean())
                    throw ApiException.badParam("response_format", "response_format.json_schema.strict: expected a boolean, got " + Params.describe(strict));
                JsonNode schema = js.get("schema");
                if (schema == null || schema.isNull())       // OpenAI allows leaving it out: then any JSON object
                    specs.add(new Spec("response_format", "json_object", null));
                else if (!schema.isObject() && !schema.isBoolean())
                    throw ApiException.badParam("response_format", "response_format.json_schema.schema: expected a JSON schema object, got " + Params.describe(schema));
                else specs.add(new Spec("response_format.json_schema.schema", "json_schema", schema));
            }
            default -> throw ApiException.badParam("response_format", "response_format.type \"" + type.asText()
                    + "\" is not supported; expected \"text\", \"json_object\" or \"json_schema\".");
        }
    }

    private static void structuredOutputs(ObjectNode body, List<Spec> specs) {
        JsonNode so = Params.field(body, "structured_outputs");
        if (so == null) return;
        if (!so.isObject()) throw ApiException.badParam("structured_outputs", "structured_outputs: expected an object, got " + Params.describe(so));
        for (var it = so.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!STRUCTURED_KEYS.contains(k))
                throw ApiException.badParam("structured_outputs", "structured_outputs." + k + " is not supported; expected one of json, regex, choice, grammar, json_object.");
        }
        int before = specs.size();
        for (var it = so.fields(); it.hasNext(); ) {
            var e = it.next();
            JsonNode v = e.getValue();
            if (v == null || v.isNull()) continue;
            String field = "structured_outputs." + e.getKey();
            switch (e.getKey()) {
                case "json" -> specs.add(new Spec(field, "json_schema", v));
                case "regex" -> specs.add(new Spec(field, "regex", v));
                case "choice" -> specs.add(new Spec(field, "choice", v));
                case "grammar" -> specs.add(new Spec(field, "grammar", v));
                case "json_object" -> {
                    if (!v.isBoolean()) throw ApiException.badParam("structured_outputs", field + ": expected a boolean, got " + Params.describe(v));
                    if (v.asBoolean()) specs.add(new Spec(field, "json_object", null));
                }
                default -> throw new IllegalStateException(e.getKey());
            }
        }
        if (specs.size() == before) throw ApiException.badParam("structured_outputs", "structured_outputs: no constraint given (json, regex, choice or grammar).");
    }

    private static void guided(ObjectNode body, String field, String kind, List<Spec> specs) {
        JsonNode v = Params.field(body, field);
        if (v != null) specs.add(new Spec(field, kind, v));
    }

    /** The compiled constraint, from the cache when the same kind and source was compiled before. */
    private Constraint compile(Spec s) {
        if (s.kind().equals("json_object")) return cached("json_object", "", Constraint::jsonObject);
        String param = s.field().contains(".") ? s.field().substring(0, s.field().indexOf('.')) : s.field();
        JsonNode v = s.source();
        return switch (s.kind()) {
            case "json_schema" -> {
                JsonNode schema = v;
                if (v.isTextual()) {                          // vLLM also takes the schema as a JSON string
                    try {
                        schema = Json.MAPPER.readTree(v.asText());
                    } catch (Exception e) {
                        throw ApiException.badParam(param, s.field() + ": the schema string is not valid JSON: " + e.getMessage());
                    }
                }
                if (schema == null || !schema.isObject() && !schema.isBoolean())
                    throw ApiException.badParam(param, s.field() + ": expected a JSON schema object, got " + Params.describe(v));
                JsonNode tree = schema;
                yield cached("json_schema", tree.toString(), () -> Constraint.jsonSchema(tree), s, param);
            }
            case "regex" -> {
                if (!v.isTextual()) throw ApiException.badParam(param, s.field() + ": expected a regex string, got " + Params.describe(v));
                yield cached("regex", v.asText(), () -> Constraint.regex(v.asText()), s, param);
            }
            case "grammar" -> {
                if (!v.isTextual()) throw ApiException.badParam(param, s.field() + ": expected a GBNF grammar string, got " + Params.describe(v));
                yield cached("grammar", v.asText(), () -> Constraint.grammar(v.asText()), s, param);
            }
            case "choice" -> {
                if (!v.isArray()) throw ApiException.badParam(param, s.field() + ": expected a list of strings, got " + Params.describe(v));
                List<String> choices = new ArrayList<>();
                for (JsonNode c : v) {
                    if (!c.isTextual()) throw ApiException.badParam(param, s.field() + ": expected a list of strings, got a list holding " + Params.describe(c));
                    choices.add(c.asText());
                }
                yield cached("choice", v.toString(), () -> Constraint.choice(choices), s, param);
            }
            default -> throw new IllegalStateException(s.kind());
        };
    }

    @FunctionalInterface
    private interface Compiler { Constraint compile() throws ConstraintException; }

    private Constraint cached(String kind, String source, java.util.function.Supplier<Constraint> make) {
        return cached(kind, source, make::get, null, null);
    }

    private Constraint cached(String kind, String source, Compiler make, Spec s, String param) {
        String key = kind + '\0' + source;
        synchronized (cache) {
            Constraint c = cache.get(key);
            if (c != null) return c;
        }
        Constraint c;
        try {
            c = make.compile();                   // outside the lock: a big schema may take a while
        } catch (ConstraintException e) {
            throw ApiException.badParam(param, "Invalid " + describeKind(kind) + " in " + s.field() + ": " + e.getMessage());
        }
        synchronized (cache) {
            Constraint had = cache.putIfAbsent(key, c);
            return had != null ? had : c;
        }
    }

    private static String describeKind(String kind) {
        return switch (kind) {
            case "json_schema" -> "JSON schema";
            case "regex" -> "regex";
            case "grammar" -> "GBNF grammar";
            case "choice" -> "choice list";
            default -> kind;
        };
    }
}
