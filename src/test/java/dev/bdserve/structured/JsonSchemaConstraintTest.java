package dev.bdserve.structured;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.Error;
import com.networknt.schema.InputFormat;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A suite of JSON schemas that together use every supported keyword, nest three levels and more, and recurse through
 * {@code $ref}. For each: its valid documents (valid by the networknt validator, format assertions on) are accepted
 * byte by byte, its invalid ones (invalid by the validator) are not, and for schemas whose outputs are bounded, random
 * walks through the allowed tokens of real vocabularies end at EOS with text that parses and validates.
 */
public class JsonSchemaConstraintTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    public record Case(String name, String schema, boolean bounded, List<String> valid, List<String> invalid) {
        @Override public String toString() { return name; }
    }

    public static List<Error> validate(String schema, String doc) {
        Schema s = REGISTRY.getSchema(schema, InputFormat.JSON);
        return s.validate(doc, InputFormat.JSON, ctx -> ctx.executionConfig(b -> b.formatAssertionsEnabled(true)));
    }

    static final String NESTED = """
            {"type":"object","properties":{"order":{"type":"object","properties":{
              "items":{"type":"array","minItems":1,"maxItems":2,"items":{"type":"object","properties":{
                "sku":{"type":"string","pattern":"^[A-Z]{2}\\\\d{3}$"},
                "qty":{"type":"integer","minimum":1,"maximum":99},
                "tags":{"type":"array","items":{"enum":["new","sale"]},"maxItems":2}},
                "required":["sku","qty"],"additionalProperties":false}},
              "placed":{"type":"string","format":"date-time"}},
              "required":["items","placed"],"additionalProperties":false}},
             "required":["order"],"additionalProperties":false}""";

    public static List<Case> cases() {
        return List.of(
                new Case("string", "{\"type\":\"string\"}", false,
                        List.of("\"hello\"", "\"a\\\"b\\u00e9\\n \\/\"", "\"\"", "\"Zürich 東京 😀\""), List.of("hello", "\"a", "1", "\"a\nb\"")),
                new Case("string lengths", "{\"type\":\"string\",\"minLength\":2,\"maxLength\":5}", true,
                        List.of("\"ab\"", "\"héllo\"", "\"a\\nb\"", "\"😀😀\""), List.of("\"a\"", "\"abcdef\"", "\"\"")),
                new Case("anchored pattern", "{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-\\\\d{2,4}$\"}", true,
                        List.of("\"ABC-12\"", "\"XYZ-1234\""), List.of("\"AB-12\"", "\"ABC-1\"", "\"ABC-12345\"")),
                new Case("unanchored pattern", "{\"type\":\"string\",\"pattern\":\"ab+c\",\"maxLength\":8}", true,
                        List.of("\"xxabbc\"", "\"abc\"", "\"abcabc\""), List.of("\"ac\"", "\"abbbbbbbbc\"")),
                new Case("pattern with quote and backslash", "{\"type\":\"string\",\"pattern\":\"^a[\\\"\\\\\\\\]b$\"}", true,
                        List.of("\"a\\\"b\"", "\"a\\\\b\""), List.of("\"ab\"", "\"a'b\"")),
                new Case("date", "{\"type\":\"string\",\"format\":\"date\"}", true,
                        List.of("\"2024-02-29\"", "\"1999-12-31\"", "\"2023-04-30\""), List.of("\"2023-02-29\"", "\"2024-13-01\"", "\"2023-04-31\"")),
                new Case("time", "{\"type\":\"string\",\"format\":\"time\"}", true,
                        List.of("\"12:34:56Z\"", "\"23:59:59.123+02:00\""), List.of("\"24:00:00Z\"", "\"12:34Z\"")),
                new Case("date-time", "{\"type\":\"string\",\"format\":\"date-time\"}", true,
                        List.of("\"2024-01-15T08:30:00Z\"", "\"2000-02-29T23:59:59.5-05:30\""), List.of("\"2024-01-15 08:30:00Z\"", "\"2024-01-15T08:30:00\"")),
                new Case("uuid", "{\"type\":\"string\",\"format\":\"uuid\"}", true,
                        List.of("\"123e4567-e89b-12d3-a456-426614174000\""), List.of("\"123e4567e89b12d3a456426614174000\"", "\"123e4567-e89b-12d3-a456-42661417400\"")),
                new Case("integer", "{\"type\":\"integer\"}", true,
                        List.of("0", "-17", "123456"), List.of("1.5", "01", "\"1\"", "-")),
                new Case("integer range", "{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", true,
                        List.of("-5", "0", "120", "37", "-1"), List.of("-6", "121", "1000", "-7")),
                new Case("exclusive bounds", "{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}", true,
                        List.of("1", "9"), List.of("0", "10")),
                new Case("number", "{\"type\":\"number\"}", true,
                        List.of("3.14", "-0.5e10", "42", "1E+3"), List.of("3.", ".5", "1e", "+1")),
                new Case("number bounds", "{\"type\":\"number\",\"minimum\":-2,\"maximum\":1}", true,
                        List.of("0", "1", "0.25", "-1.5", "-2"), List.of("1.5", "-2.1", "2")),
                new Case("boolean or null", "{\"type\":[\"boolean\",\"null\"]}", true,
                        List.of("true", "false", "null"), List.of("1", "\"true\"", "nul")),
                new Case("enum", "{\"enum\":[\"red\",\"green\",3,null]}", true,
                        List.of("\"red\"", "3", "null"), List.of("\"blue\"", "4")),
                new Case("const", "{\"const\":{\"a\":[1,\"x\"]}}", true,
                        List.of("{\"a\":[1,\"x\"]}"), List.of("{\"a\":[1]}", "{\"a\":[1,\"y\"]}")),
                new Case("required properties", """
                        {"type":"object","properties":{"name":{"type":"string","maxLength":10},
                         "age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"],"additionalProperties":false}""", true,
                        List.of("{\"name\":\"Ann\",\"age\":31}", "{ \"name\" : \"Bo\" , \"age\" : 0 }", "{\n  \"name\": \"C\",\n  \"age\": 1\n}"),
                        List.of("{\"name\":\"Ann\"}", "{\"name\":\"Ann\",\"age\":31,\"x\":1}", "{\"name\":\"Ann\",\"age\":-1}")),
                new Case("optional properties", """
                        {"type":"object","properties":{"a":{"type":"string","maxLength":3},"b":{"type":"integer","minimum":0,"maximum":9},
                         "c":{"type":"boolean"}},"required":["b"],"additionalProperties":false}""", true,
                        List.of("{\"b\":1}", "{\"a\":\"x\",\"b\":2,\"c\":true}", "{\"b\":1,\"c\":false}"), List.of("{}", "{\"a\":\"x\"}", "{\"b\":1,}")),
                new Case("additionalProperties schema", """
                        {"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],
                         "additionalProperties":{"type":"string","maxLength":5}}""", false,
                        List.of("{\"id\":1,\"x\":\"abc\"}", "{\"id\":2}", "{\"id\":3,\"ida\":\"\",\"i\":\"q\"}"), List.of("{\"id\":1,\"x\":5}", "{\"x\":\"a\"}")),
                new Case("additionalProperties true", "{\"type\":\"object\",\"additionalProperties\":true}", false,
                        List.of("{}", "{\"k\":[1,{\"z\":null}],\"s\":\"t\"}"), List.of("[]", "{\"k\"}")),
                new Case("any object", "{\"type\":\"object\"}", false,
                        List.of("{}", "{\"a\": {\"b\": [true, 1.5e3, \"\"]}}"), List.of("null", "{1:2}")),
                new Case("array bounds", "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":50},\"minItems\":1,\"maxItems\":3}", true,
                        List.of("[1]", "[1, 2, 3]", "[ 0,50 ]"), List.of("[]", "[1,2,3,4]", "[1,\"a\"]", "[51]")),
                new Case("any array", "{\"type\":\"array\"}", false,
                        List.of("[]", "[1,\"a\",null,[{}]]"), List.of("{}", "[1,]")),
                new Case("anyOf", "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":3},{\"type\":\"integer\",\"minimum\":0,\"maximum\":9}]}", true,
                        List.of("\"abc\"", "7"), List.of("10", "\"abcd\"", "true")),
                new Case("oneOf", """
                        {"oneOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number","minimum":0,"maximum":100}},
                          "required":["kind","r"],"additionalProperties":false},
                         {"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"integer","minimum":1,"maximum":10}},
                          "required":["kind","side"],"additionalProperties":false}]}""", true,
                        List.of("{\"kind\":\"circle\",\"r\":2.5}", "{\"kind\":\"square\",\"side\":3}"), List.of("{\"kind\":\"square\",\"r\":1}", "{\"kind\":\"circle\"}")),
                new Case("$defs", """
                        {"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer","minimum":-100,"maximum":100},
                          "y":{"type":"integer","minimum":-100,"maximum":100}},"required":["x","y"],"additionalProperties":false}},
                         "type":"array","items":{"$ref":"#/$defs/point"},"maxItems":3}""", true,
                        List.of("[{\"x\":1,\"y\":-2}]", "[]", "[{\"x\":0,\"y\":0},{\"x\":100,\"y\":-100}]"), List.of("[{\"x\":1}]", "[{\"x\":1,\"y\":101}]")),
                new Case("recursive tree", """
                        {"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer","minimum":0,"maximum":99},
                          "children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["value"],"additionalProperties":false}},
                         "$ref":"#/$defs/node"}""", false,
                        List.of("{\"value\":1,\"children\":[{\"value\":2},{\"value\":3,\"children\":[{\"value\":4,\"children\":[]}]}]}", "{\"value\":0}"),
                        List.of("{\"value\":1,\"children\":[{\"children\":[]}]}", "{\"value\":1,\"children\":[{\"value\":1},{\"value\":2},{\"value\":3}]}")),
                new Case("recursive root list", """
                        {"type":"object","properties":{"name":{"type":"string","maxLength":4},"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},
                         "required":["name","next"],"additionalProperties":false}""", false,
                        List.of("{\"name\":\"a\",\"next\":{\"name\":\"b\",\"next\":null}}", "{\"name\":\"\",\"next\":null}"),
                        List.of("{\"name\":\"a\",\"next\":{}}", "{\"name\":\"a\"}")),
                new Case("nested order", NESTED, true,
                        List.of("{\"order\":{\"items\":[{\"sku\":\"AB123\",\"qty\":2,\"tags\":[\"sale\"]}],\"placed\":\"2024-05-01T10:00:00Z\"}}",
                                "{\n  \"order\": {\n    \"items\": [\n      {\"sku\": \"ZZ999\", \"qty\": 99},\n      {\"sku\": \"AA000\", \"qty\": 1, \"tags\": []}\n    ],\n    \"placed\": \"1999-12-31T23:59:59+01:00\"\n  }\n}"),
                        List.of("{\"order\":{\"items\":[{\"sku\":\"AB123\",\"qty\":0}],\"placed\":\"2024-05-01T10:00:00Z\"}}",
                                "{\"order\":{\"items\":[],\"placed\":\"2024-05-01T10:00:00Z\"}}",
                                "{\"order\":{\"items\":[{\"sku\":\"ab123\",\"qty\":2}],\"placed\":\"2024-05-01T10:00:00Z\"}}")),
                new Case("string or null with maxLength", "{\"type\":[\"string\",\"null\"],\"maxLength\":3}", true,
                        List.of("null", "\"ab\""), List.of("\"abcd\"", "0")),
                new Case("definitions and annotations", """
                        {"title":"T","description":"d","definitions":{"flag":{"type":"boolean","description":"on or off"}},
                         "type":"object","properties":{"on":{"$ref":"#/definitions/flag"}},"additionalProperties":false}""", true,
                        List.of("{}", "{\"on\":true}"), List.of("{\"on\":1}", "{\"off\":true}")),
                new Case("anyOf array or object, nested", """
                        {"type":"object","properties":{"data":{"anyOf":[{"type":"array","items":{"type":"number","minimum":-1,"maximum":1},"maxItems":2},
                          {"type":"object","properties":{"msg":{"type":"string","maxLength":6}},"required":["msg"],"additionalProperties":false}]}},
                         "required":["data"],"additionalProperties":false}""", true,
                        List.of("{\"data\":[0.5,-1]}", "{\"data\":{\"msg\":\"hi\"}}"), List.of("{\"data\":[2]}", "{\"data\":{}}")),
                new Case("unicode names and values", """
                        {"type":"object","properties":{"città":{"enum":["Zürich","東京"]}},"required":["città"],"additionalProperties":false}""", true,
                        List.of("{\"città\":\"東京\"}", "{\"città\":\"Zürich\"}"), List.of("{\"città\":\"Paris\"}", "{\"citta\":\"東京\"}")),
                new Case("pattern in array of strings", """
                        {"type":"array","items":{"type":"string","pattern":"^(yes|no|[0-9]+%)$","maxLength":4},"maxItems":3}""", true,
                        List.of("[\"yes\",\"12%\"]", "[]"), List.of("[\"maybe\"]", "[\"100%%\"]")));
    }

    @Test
    void theSuiteCoversTheKeywords() {
        Set<String> used = new java.util.HashSet<>();
        int bounded = 0;
        for (Case c : cases()) {
            collect(c.schema(), used);
            if (c.bounded()) bounded++;
        }
        for (String k : List.of("type", "properties", "required", "additionalProperties", "enum", "const", "anyOf", "oneOf", "items",
                "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                "exclusiveMaximum", "$ref", "$defs", "definitions"))
            assertTrue(used.contains(k), "no schema uses " + k);
        assertTrue(cases().size() >= 30, cases().size() + " schemas");
        assertTrue(bounded >= 20, bounded + " bounded schemas");
    }

    private static void collect(String schema, Set<String> out) {
        try {
            JSON.readTree(schema).findParents("type");
            var it = JSON.readTree(schema);
            walk(it, out);
        } catch (Exception e) {
            fail(e);
        }
    }

    private static void walk(com.fasterxml.jackson.databind.JsonNode n, Set<String> out) {
        if (n.isObject()) n.properties().forEach(e -> { out.add(e.getKey()); walk(e.getValue(), out); });
        else if (n.isArray()) n.forEach(x -> walk(x, out));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void validDocumentsAreAcceptedAndInvalidOnesRejected(Case c) throws Exception {
        Constraint k = Constraint.jsonSchema(c.schema());
        for (String doc : c.valid()) {
            assertEquals(List.of(), validate(c.schema(), doc), "the test's valid document " + doc);
            assertTrue(Walks.accepts(k, doc), "rejected valid " + doc + "\n" + k.gbnf());
        }
        for (String doc : c.invalid()) {
            boolean json = true;
            try {
                JSON.readTree(doc);
            } catch (Exception e) {
                json = false;
            }
            if (json) assertNotEquals(List.of(), validate(c.schema(), doc), "the test's invalid document " + doc);
            assertFalse(Walks.accepts(k, doc), "accepted invalid " + doc);
        }
    }

    static Stream<Object[]> boundedOnVocabularies() {
        List<Object[]> out = new ArrayList<>();
        for (Case c : cases()) if (c.bounded()) for (String v : List.of("qwen3", "llama3", "gemma3")) out.add(new Object[]{c, v});
        return out.stream();
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("boundedOnVocabularies")
    void randomWalksEndInValidDocuments(Case c, String vocab) throws Exception {
        Constraint k = Constraint.jsonSchema(c.schema());
        for (String text : Walks.walks(k, Walks.real(vocab), c.name().hashCode() + vocab.hashCode(), 3, 400)) {
            JSON.readTree(text);
            assertEquals(List.of(), validate(c.schema(), text), "walk output " + text);
        }
    }

    @Test
    void aWalkCanRecurseThroughRef() throws Exception {
        // unbounded in principle; with EOS taken half the time where allowed and short values, the walks end
        Case tree = cases().stream().filter(c -> c.name().equals("recursive root list")).findFirst().orElseThrow();
        Constraint k = Constraint.jsonSchema(tree.schema());
        java.util.Random r = new java.util.Random(7);
        int done = 0;
        for (int i = 0; i < 6; i++) {
            String text = Walks.walk(k, Walks.real("llama3"), r, 300, null);
            if (text == null) continue;
            done++;
            assertEquals(List.of(), validate(tree.schema(), text), text);
        }
        assertTrue(done > 0, "no walk ended");
    }

    @Test
    void jsonObjectAcceptsAnyObjectOnly() throws Exception {
        Constraint k = Constraint.jsonObject();
        assertTrue(Walks.accepts(k, "{\"a\": [1, {\"b\": null}], \"c\": \"d\"}"));
        assertTrue(Walks.accepts(k, "{}\n"));
        assertFalse(Walks.accepts(k, "[1]"));
        assertFalse(Walks.accepts(k, "{\"a\":1"));
        assertFalse(Walks.accepts(k, "{}" + " ".repeat(30)), "whitespace is bounded");
    }

    @Test
    void badSchemasNameTheKeywordAndWhere() {
        assertError("{\"type\":\"object\",\"minProperties\":1}", "minProperties", "/minProperties");
        assertError("{\"properties\":{\"a\":{\"type\":\"strin\"}}}", "strin", "/properties/a/type");
        assertError("{\"type\":\"string\",\"format\":\"email\"}", "email", "/format");
        assertError("{\"type\":\"string\",\"pattern\":\"a(?=b)\"}", "lookaround", "/pattern");
        assertError("{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "offset 3", "/pattern");
        assertError("{\"$ref\":\"http://example.com/s.json\"}", "local", "/$ref");
        assertError("{\"$ref\":\"#/$defs/missing\"}", "points to nothing", "/$ref");
        assertError("{\"type\":\"array\",\"items\":{\"not\":{}}}", "not", "/items/not");
        assertError("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "whole number", "/");
        assertError("{\"type\":\"object\",\"properties\":{},\"required\":[\"x\"]}", "required property x", "/required");
        assertError("{\"type\": \"object\",,}", "not valid JSON", "line 1, column");
        assertError("false", "admits no value", "/");
        assertError("{\"items\":".repeat(300) + "{}" + "}".repeat(300), "nested deeper", "/items/items");
    }

    private static void assertError(String schema, String inMessage, String location) {
        ConstraintException e = assertThrows(ConstraintException.class, () -> Constraint.jsonSchema(schema), schema);
        assertTrue(e.getMessage().contains(inMessage), e.getMessage());
        assertNotNull(e.location(), e.getMessage());
        assertTrue(e.location().startsWith(location), "location " + e.location() + ", expected " + location);
    }

    /** Integer bounds are exact: around random bounds, every integer is accepted exactly when it is within them. */
    @Test
    void integerBoundsAreExact() throws Exception {
        java.util.Random r = new java.util.Random(17);
        for (int round = 0; round < 25; round++) {
            long lo = r.nextInt(2000) - 1000, hi = lo + r.nextInt(r.nextBoolean() ? 30 : 3000);
            if (round % 5 == 0) lo = -r.nextLong(1_000_000_000_000L);
            Constraint c = Constraint.jsonSchema("{\"type\":\"integer\",\"minimum\":" + lo + ",\"maximum\":" + hi + "}");
            for (long x : new long[]{lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0, -1, 1, (lo + hi) / 2, lo * 10, hi * 10})
                assertEquals(x >= lo && x <= hi, Walks.accepts(c, Long.toString(x)), x + " in [" + lo + ", " + hi + "]");
            for (int k = 0; k < 40; k++) {
                long x = lo - 20 + r.nextLong(hi - lo + 41);
                assertEquals(x >= lo && x <= hi, Walks.accepts(c, Long.toString(x)), x + " in [" + lo + ", " + hi + "]");
            }
        }
    }

    /** Number bounds are sound: whatever the grammar accepts is within them (it may leave out some in-range values). */
    @Test
    void numberBoundsAreSound() throws Exception {
        java.util.Random r = new java.util.Random(23);
        for (int round = 0; round < 20; round++) {
            double lo = (r.nextInt(400) - 200) / 4.0, hi = lo + r.nextInt(60) / 4.0 + 1;
            boolean exclusive = r.nextBoolean();
            String schema = exclusive ? "{\"type\":\"number\",\"exclusiveMinimum\":" + lo + ",\"exclusiveMaximum\":" + hi + "}"
                    : "{\"type\":\"number\",\"minimum\":" + lo + ",\"maximum\":" + hi + "}";
            Constraint c = Constraint.jsonSchema(schema);
            int accepted = 0;
            for (int k = 0; k < 300; k++) {
                String x = k % 3 == 0 ? Long.toString(Math.round(lo) - 3 + r.nextInt((int) (hi - lo) + 7))
                        : String.format(java.util.Locale.ROOT, "%.2f", lo - 2 + r.nextDouble() * (hi - lo + 4));
                if (!Walks.accepts(c, x)) continue;
                accepted++;
                double v = Double.parseDouble(x);
                assertTrue(exclusive ? v > lo && v < hi : v >= lo && v <= hi, x + " accepted for " + schema);
                assertEquals(List.of(), validate(schema, x), x);
            }
            assertTrue(accepted > 0, "nothing accepted for " + schema);
        }
    }
}
