package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.structured.Constraint;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Reading a request's constraint fields without a server: kinds, the compiled-constraint cache, refusals. */
class StructuredOutputsTest {
    static ObjectNode body(String json) {
        try {
            return (ObjectNode) Json.MAPPER.readTree(json);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void eachSpellingGivesItsKind() {
        StructuredOutputs so = new StructuredOutputs(8);
        assertNull(so.parse(body("{}")));
        assertNull(so.parse(body("{\"response_format\":{\"type\":\"text\"}}")));
        assertEquals("json_object", so.parse(body("{\"response_format\":{\"type\":\"json_object\"}}")).kind());
        assertEquals("json_schema", so.parse(body("{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\",\"schema\":{\"type\":\"integer\"}}}}")).kind());
        assertEquals("json_object", so.parse(body("{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\"}}}")).kind());
        assertEquals("json_schema", so.parse(body("{\"structured_outputs\":{\"json\":\"{\\\"type\\\":\\\"integer\\\"}\"}}")).kind());
        assertEquals("regex", so.parse(body("{\"structured_outputs\":{\"regex\":\"a+\"}}")).kind());
        assertEquals("choice", so.parse(body("{\"structured_outputs\":{\"choice\":[\"x\",\"y\"]}}")).kind());
        assertEquals("grammar", so.parse(body("{\"structured_outputs\":{\"grammar\":\"root ::= \\\"a\\\"\"}}")).kind());
        assertEquals("json_object", so.parse(body("{\"structured_outputs\":{\"json_object\":true}}")).kind());
        assertEquals("json_schema", so.parse(body("{\"guided_json\":{\"type\":\"boolean\"}}")).kind());
        assertEquals("regex", so.parse(body("{\"guided_regex\":\"b\",\"guided_decoding_backend\":\"xgrammar\"}")).kind());
        assertEquals("choice", so.parse(body("{\"guided_choice\":[\"p\"]}")).kind());
        assertEquals("grammar", so.parse(body("{\"guided_grammar\":\"root ::= [0-9]\"}")).kind());
    }

    @Test
    void compiledConstraintsAreSharedByKindAndSourceAndTheCacheIsBounded() {
        StructuredOutputs so = new StructuredOutputs(3);
        Constraint a = so.parse(body("{\"guided_regex\":\"a+\"}"));
        assertSame(a, so.parse(body("{\"structured_outputs\":{\"regex\":\"a+\"}}")));
        assertNotSame(a, so.parse(body("{\"guided_grammar\":\"root ::= \\\"a\\\"+\"}")), "another kind, another entry");
        Constraint s1 = so.parse(body("{\"guided_json\":{\"type\":\"integer\"}}"));
        assertSame(s1, so.parse(body("{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"integer\"}}}}")));
        assertEquals(3, so.cached());
        for (int i = 0; i < 5; i++) so.parse(body("{\"guided_regex\":\"x{" + i + "}\"}"));
        assertEquals(3, so.cached());
        assertNotSame(a, so.parse(body("{\"guided_regex\":\"a+\"}")), "the least recently used entry was dropped");
    }

    @Test
    void refusalsAre400sNamingTheField() {
        StructuredOutputs so = new StructuredOutputs(8);
        ApiException e = assertThrows(ApiException.class, () -> so.parse(body("{\"guided_regex\":\"(a\"}")));
        assertEquals(400, e.status());
        assertEquals("guided_regex", e.param());
        assertTrue(e.getMessage().startsWith("Invalid regex in guided_regex: ") && e.getMessage().contains("offset"), e.getMessage());
        e = assertThrows(ApiException.class, () -> so.parse(body("{\"structured_outputs\":{\"json\":{\"type\":\"string\",\"allOf\":[]}}}")));
        assertEquals("structured_outputs", e.param());
        assertTrue(e.getMessage().contains("allOf") && e.getMessage().contains("structured_outputs.json"), e.getMessage());
        assertThrows(ApiException.class, () -> so.parse(body("{\"structured_outputs\":{}}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"structured_outputs\":{\"json_object\":false}}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"response_format\":\"json\"}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"response_format\":{}}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"response_format\":{\"type\":\"json_schema\"}}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"guided_json\":\"{not json\"}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"guided_json\":5}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"guided_regex\":[\"a\"]}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"guided_choice\":\"a\"}")));
        assertThrows(ApiException.class, () -> so.parse(body("{\"guided_choice\":[\"a\",\"\"]}")));
        e = assertThrows(ApiException.class, () -> so.parse(body("{\"guided_regex\":\"a\",\"guided_choice\":[\"b\"],\"structured_outputs\":{\"regex\":\"c\"}}")));
        assertTrue(e.getMessage().contains("got 3"), e.getMessage());
    }
}
