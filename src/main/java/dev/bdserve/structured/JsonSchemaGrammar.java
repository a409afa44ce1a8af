package dev.bdserve.structured;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dk.brics.automaton.Automaton;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * JSON Schema to GBNF. What the grammar enforces:
 * <ul>
 *   <li>{@code type} (one or a list), {@code enum}, {@code const} (compact JSON literals), {@code anyOf} and
 *       {@code oneOf} (alternatives; oneOf's "exactly one" is not enforced, so its branches should be disjoint),
 *       {@code $ref} to {@code #}, {@code #/$defs/..}, {@code #/definitions/..} or any local JSON pointer, recursion
 *       included;</li>
 *   <li>objects: {@code properties} in their declared order, each optional one skippable, {@code required};
 *       {@code additionalProperties} false, true or a schema (extra keys after the declared ones, never one of
 *       their names). Absent, it is false when {@code properties} is given (a model adds no undeclared keys), true
 *       otherwise ({@code {"type": "object"}} is any object);</li>
 *   <li>arrays: {@code items}, {@code minItems}, {@code maxItems};</li>
 *   <li>strings: {@code minLength}, {@code maxLength} (in code points; an escape is one), {@code pattern} (see
 *       {@link Regex}), {@code format} date, time, date-time (RFC 3339, upper-case T and Z, real calendar dates, no
 *       leap second) and uuid. With a pattern or format the string's characters are written in one canonical way
 *       (only {@code " \} and control characters escaped);</li>
 *   <li>integers: {@code minimum}, {@code maximum}, {@code exclusiveMinimum}, {@code exclusiveMaximum} exactly;
 *       numbers with bounds: an integer part within them and a fraction only where the value stays inside, no
 *       exponent (so every output is in range; in-range values below the first or above the last whole number
 *       are not produced); without bounds any JSON number.</li>
 * </ul>
 * Numbers have at most 16 integer digits, 16 fraction digits and 3 exponent digits. Whitespace between tokens is
 * nothing, one space, or a newline and up to 20 spaces or tabs. Annotations (title, description, default,
 * examples, $comment, $schema, $id, deprecated, readOnly, writeOnly) are ignored; any other keyword is an error
 * naming it and its JSON pointer.
 */
final class JsonSchemaGrammar {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$comment",
            "$schema", "$id", "deprecated", "readOnly", "writeOnly", "$defs", "definitions");
    private static final Set<String> KEYWORDS = Set.of("type", "properties", "required", "additionalProperties", "enum",
            "const", "anyOf", "oneOf", "items", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format",
            "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "$ref");

    static final String BASE = """
            ws ::= "" | " " | "\\n" [ \\t]{0,20}
            value ::= object | array | string | number | boolean | null
            object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
            array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
            string ::= "\\"" char* "\\""
            char ::= [^"\\\\\\x00-\\x1F] | "\\\\" ( ["\\\\/bfnrt] | "u" [0-9a-fA-F]{4} )
            number ::= "-"? int ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
            int ::= "0" | [1-9] [0-9]{0,15}
            integer ::= "-"? int
            boolean ::= "true" | "false"
            null ::= "null"
            """;

    private final JsonNode root;
    private final StringBuilder rules = new StringBuilder();
    private final Map<String, String> refs = new HashMap<>();
    private int next, depth;
    private static final int MAX_DEPTH = 100;

    private JsonSchemaGrammar(JsonNode root) { this.root = root; }

    static String toGbnf(String schema) throws ConstraintException {
        JsonNode n;
        try {
            n = JSON.readTree(schema);
        } catch (JsonProcessingException e) {
            var loc = e.getLocation();
            throw new ConstraintException("json_schema: not valid JSON: " + e.getOriginalMessage(),
                    loc == null ? null : "line " + loc.getLineNr() + ", column " + loc.getColumnNr());
        }
        if (n == null) throw new ConstraintException("json_schema: empty", null);
        return toGbnf(n);
    }

    static String toGbnf(JsonNode schema) throws ConstraintException {
        JsonSchemaGrammar g = new JsonSchemaGrammar(schema);
        String top = g.schema(schema, "");
        return "root ::= " + top + " ws\n" + BASE + g.rules;
    }

    static String anyObjectGbnf() { return "root ::= object ws\n" + BASE; }

    private String fresh(String kind) { return kind + "-" + (next++); }

    private String define(String name, String body) {
        rules.append(name).append(" ::= ").append(body).append('\n');
        return name;
    }

    /** A schema error at JSON pointer {@code pointer} (also raised by {@link NumberBounds}). */
    static ConstraintException error(String msg, String pointer) {
        return new ConstraintException("json_schema: " + msg, pointer.isEmpty() ? "/" : pointer);
    }

    /** A GBNF expression for the values {@code s} (at JSON pointer {@code p}) admits. */
    private String schema(JsonNode s, String p) throws ConstraintException {
        if (++depth > MAX_DEPTH) throw error("schema nested deeper than " + MAX_DEPTH + " levels", p);
        try {
            return schemaAt(s, p);
        } finally {
            depth--;
        }
    }

    private String schemaAt(JsonNode s, String p) throws ConstraintException {
        if (s.isBoolean()) {
            if (s.asBoolean()) return "value";
            throw error("the schema false admits no value", p);
        }
        if (!s.isObject()) throw error("a schema must be an object or a boolean", p);
        List<String> constraining = new ArrayList<>();
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (ANNOTATIONS.contains(k)) continue;
            if (!KEYWORDS.contains(k)) throw error("unsupported keyword " + k, p + "/" + esc(k));
            constraining.add(k);
        }
        if (s.has("$ref")) {
            if (constraining.size() > 1) throw error("$ref next to " + others(constraining, "$ref") + " is not supported", p);
            return ref(s.get("$ref"), p + "/$ref");
        }
        if (s.has("const")) return literal(s.get("const"));
        if (s.has("enum")) {
            JsonNode e = s.get("enum");
            if (!e.isArray() || e.isEmpty()) throw error("enum must be a non-empty array", p + "/enum");
            List<String> alts = new ArrayList<>();
            for (JsonNode v : e) alts.add(literal(v));
            return "( " + String.join(" | ", alts) + " )";
        }
        for (String comb : List.of("anyOf", "oneOf")) {
            if (!s.has(comb)) continue;
            if (constraining.size() > 1) throw error(comb + " next to " + others(constraining, comb) + " is not supported", p);
            JsonNode list = s.get(comb);
            if (!list.isArray() || list.isEmpty()) throw error(comb + " must be a non-empty array", p + "/" + comb);
            List<String> alts = new ArrayList<>();
            for (int k = 0; k < list.size(); k++) alts.add(schema(list.get(k), p + "/" + comb + "/" + k));
            return "( " + String.join(" | ", alts) + " )";
        }
        Set<String> types = new LinkedHashSet<>();
        JsonNode t = s.get("type");
        if (t == null) {
            if (s.has("properties") || s.has("additionalProperties") || s.has("required")) types.add("object");
            if (s.has("items") || s.has("minItems") || s.has("maxItems")) types.add("array");
            if (s.has("minLength") || s.has("maxLength") || s.has("pattern") || s.has("format")) types.add("string");
            if (s.has("minimum") || s.has("maximum") || s.has("exclusiveMinimum") || s.has("exclusiveMaximum")) types.add("number");
            if (types.isEmpty()) return "value";
        } else if (t.isTextual()) {
            types.add(t.asText());
        } else if (t.isArray() && !t.isEmpty()) {
            for (JsonNode x : t) {
                if (!x.isTextual()) throw error("type must name types", p + "/type");
                types.add(x.asText());
            }
        } else {
            throw error("type must be a string or a non-empty array", p + "/type");
        }
        if (types.contains("integer") && types.contains("number")) types.remove("integer");
        List<String> alts = new ArrayList<>();
        for (String type : types) {
            alts.add(switch (type) {
                case "object" -> object(s, p);
                case "array" -> array(s, p);
                case "string" -> string(s, p);
                case "integer" -> integer(s, p);
                case "number" -> number(s, p);
                case "boolean" -> "boolean";
                case "null" -> "null";
                default -> throw error("unknown type " + type, p + "/type");
            });
        }
        return alts.size() == 1 ? alts.get(0) : "( " + String.join(" | ", alts) + " )";
    }

    private static String others(List<String> keys, String but) {
        return String.join(", ", keys.stream().filter(k -> !k.equals(but)).toList());
    }

    private String ref(JsonNode r, String p) throws ConstraintException {
        if (!r.isTextual() || !r.asText().startsWith("#")) throw error("only local references (#...) are supported", p);
        String ptr = r.asText().substring(1);
        String name = refs.get(ptr);
        if (name != null) return name;
        JsonNode target = ptr.isEmpty() ? root : root.at(ptr);
        if (target.isMissingNode()) throw error("$ref " + r.asText() + " points to nothing", p);
        name = fresh("ref");
        refs.put(ptr, name);
        define(name, schema(target, ptr));
        return name;
    }

    private static String literal(JsonNode v) {
        try {
            return Constraint.literal(JSON.writeValueAsString(v));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String esc(String key) { return key.replace("~", "~0").replace("/", "~1"); }

    // ---------------------------------------------------------------- objects

    private String object(JsonNode s, String p) throws ConstraintException {
        JsonNode props = s.path("properties");
        if (!props.isMissingNode() && !props.isObject()) throw error("properties must be an object", p + "/properties");
        Set<String> required = new LinkedHashSet<>();
        JsonNode req = s.path("required");
        if (!req.isMissingNode()) {
            if (!req.isArray()) throw error("required must be an array", p + "/required");
            for (JsonNode r : req) {
                if (!r.isTextual()) throw error("required must list strings", p + "/required");
                required.add(r.asText());
            }
        }
        List<String> names = new ArrayList<>();
        List<String> kvs = new ArrayList<>();
        for (Iterator<String> it = props.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            names.add(k);
            kvs.add(Constraint.literal(quote(k)) + " ws \":\" ws " + schema(props.get(k), p + "/properties/" + esc(k)));
        }
        JsonNode add = s.get("additionalProperties");
        String extra = null;
        if (add == null ? names.isEmpty() : !(add.isBoolean() && !add.asBoolean())) {
            String valueRule = add == null || add.isBoolean() ? "value" : schema(add, p + "/additionalProperties");
            extra = define(fresh("extra"), keyExcluding(names) + " ws \":\" ws " + valueRule);
        }
        // after[i]: properties i.. when one was already written (each comes with a comma); first[i]: none written yet
        int n = names.size();
        String tailComma = extra == null ? "\"\"" : define(fresh("xs"), "( \",\" ws " + extra + " ws )*");
        String tailFirst = extra == null ? "\"\"" : define(fresh("xf"), "( " + extra + " ws ( \",\" ws " + extra + " ws )* )?");
        String[] after = new String[n + 1], first = new String[n + 1];
        after[n] = tailComma;
        first[n] = tailFirst;
        for (int i = n - 1; i >= 0; i--) {
            String id = fresh("obj");
            String withComma = "\",\" ws " + kvs.get(i) + " ws " + after[i + 1];
            after[i] = define(id + "-a", required.contains(names.get(i)) ? withComma : withComma + " | " + after[i + 1]);
            String asFirst = kvs.get(i) + " ws " + after[i + 1];
            first[i] = define(id + "-f", required.contains(names.get(i)) ? asFirst : asFirst + " | " + first[i + 1]);
        }
        // a required name that only an additional property could supply would not be enforced: refuse it
        for (String r : required)
            if (!names.contains(r)) throw error("required property " + r + " must be declared in properties", p + "/required");
        return "\"{\" ws " + first[0] + " \"}\"";
    }

    private static String quote(String k) {
        try {
            return JSON.writeValueAsString(k);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A JSON string key that is none of {@code names} (canonically escaped). */
    private String keyExcluding(List<String> names) throws ConstraintException {
        if (names.isEmpty()) return "string";
        Automaton a = Regex.anyString();
        for (String nm : names) a = a.minus(Automaton.makeString(nm));
        String start = AutomatonGbnf.rules(a, fresh("key"), true, rules, "an additional property name");
        return "\"\\\"\" " + start + " \"\\\"\"";
    }

    // ---------------------------------------------------------------- arrays

    private String array(JsonNode s, String p) throws ConstraintException {
        JsonNode itemsNode = s.get("items");
        String item = itemsNode == null ? "value" : schema(itemsNode, p + "/items");
        int min = count(s, "minItems", p), max = count(s, "maxItems", p);
        if (max >= 0 && max < min) throw error("maxItems < minItems", p + "/maxItems");
        if (max > 100_000) throw error("maxItems above 100000 is not supported", p + "/maxItems");
        if (max == 0) return "\"[\" ws \"]\"";
        String more = "( \",\" ws " + item + " ws )";
        int lo = Math.max(min - 1, 0);
        String reps = max < 0 ? "{" + lo + ",}" : "{" + lo + "," + (max - 1) + "}";
        String body = item + " ws " + more + reps;
        return define(fresh("arr"), min == 0 ? "\"[\" ws ( " + body + " )? \"]\"" : "\"[\" ws " + body + " \"]\"");
    }

    private static int count(JsonNode s, String key, String p) throws ConstraintException {
        JsonNode v = s.get(key);
        if (v == null) return key.startsWith("min") ? 0 : -1;
        if (!v.canConvertToInt() || v.asInt() < 0 || (v.isFloatingPointNumber() && v.asDouble() != Math.floor(v.asDouble())))
            throw error(key + " must be a non-negative integer", p + "/" + key);
        return v.asInt();
    }

    // ---------------------------------------------------------------- strings

    private String string(JsonNode s, String p) throws ConstraintException {
        int min = count(s, "minLength", p), max = count(s, "maxLength", p);
        if (max >= 0 && max < min) throw error("maxLength < minLength", p + "/maxLength");
        if (max > 10_000 || min > 10_000) throw error("string lengths above 10000 are not supported", p + (max > 10_000 ? "/maxLength" : "/minLength"));
        boolean automaton = s.has("pattern") || s.has("format");
        if (!automaton) {
            if (min == 0 && max < 0) return "string";
            return define(fresh("str"), "\"\\\"\" char{" + min + "," + (max < 0 ? "" : max) + "} \"\\\"\"");
        }
        Automaton a = Regex.anyString();
        if (s.has("pattern")) {
            JsonNode pat = s.get("pattern");
            if (!pat.isTextual()) throw error("pattern must be a string", p + "/pattern");
            try {
                a = Regex.search(pat.asText());
            } catch (ConstraintException e) {
                throw error(e.getMessage().replaceFirst("^regex: ", "pattern: ").replaceFirst(" \\(at .*\\)$", "") + " at " + e.location(), p + "/pattern");
            }
        }
        if (s.has("format")) a = a.intersection(format(s.get("format"), p + "/format"));
        if (min > 0 || max >= 0) {
            Automaton len = max < 0 ? Regex.anyChar().repeat(min) : Regex.anyChar().repeat(min, max);
            a = a.intersection(len);
        }
        if (a.isEmpty()) throw error("no string satisfies pattern, format and lengths together", p);
        String start = AutomatonGbnf.rules(a, fresh("pat"), true, rules, "the string schema at " + p);
        return "\"\\\"\" " + start + " \"\\\"\"";
    }

    private static final String DATE = "(\\d\\d\\d\\d-(0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|\\d\\d\\d\\d-(0[469]|11)-(0[1-9]|[12]\\d|30)"
            + "|\\d\\d\\d\\d-02-(0[1-9]|1\\d|2[0-8])|\\d\\d(0[48]|[2468][048]|[13579][26])-02-29|([02468][048]|[13579][26])00-02-29)";
    private static final String TIME = "([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,6})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)";

    private static Automaton format(JsonNode f, String p) throws ConstraintException {
        String re = switch (f.asText()) {
            case "date" -> DATE;
            case "time" -> TIME;
            case "date-time" -> DATE + "T" + TIME;
            case "uuid" -> "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
            default -> throw error("unsupported format " + f.asText() + " (supported: date, time, date-time, uuid)", p);
        };
        return Regex.fullMatch(re);
    }

    // ---------------------------------------------------------------- numbers

    private String integer(JsonNode s, String p) throws ConstraintException {
        NumberBounds b = NumberBounds.of(s, p);
        if (!b.any()) return "integer";
        return AutomatonGbnf.rules(b.integers(), fresh("int"), false, rules, "the integer bounds at " + p);
    }

    private String number(JsonNode s, String p) throws ConstraintException {
        NumberBounds b = NumberBounds.of(s, p);
        if (!b.any()) return "number";
        return AutomatonGbnf.rules(b.numbers(), fresh("num"), false, rules, "the number bounds at " + p);
    }
}
