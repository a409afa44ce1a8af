package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.structured.Constraint;
import dev.bdserve.structured.TokenMatcher;
import dev.bdserve.structured.TokenVocabulary;
import dev.bdserve.tokenizer.HfTokenizer;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The constraint of {@code tool_choice} required / named, per format: it accepts the format's call text with
 * arguments valid for the function's schema (its {@code $ref}s included), and nothing else; on Qwen3's real
 * vocabulary its first allowed token may be the {@code <tool_call>} token.
 */
class ToolCallGrammarTest {
    static ToolChoice choice(String toolChoice, boolean parallel) throws Exception {
        ObjectNode b = (ObjectNode) Json.MAPPER.readTree("""
                {"tools": [
                  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
                    "properties": {"city": {"type": "string"}, "at": {"$ref": "#/$defs/place"}}, "required": ["city"],
                    "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "integer"}}, "required": ["lat"]}}}}},
                  {"type": "function", "function": {"name": "get_time"}}],
                 "tool_choice": %s, "parallel_tool_calls": %s}""".formatted(toolChoice, parallel));
        return ToolChoice.parse(b);
    }

    static boolean accepts(Constraint c, String text) {
        TokenMatcher m = c.newMatcher(TokenVocabulary.of(new byte[][]{null}, new int[]{0}));
        return m.advanceBytes(text.getBytes(StandardCharsets.UTF_8)) && m.isAccepting();
    }

    static final String W1 = "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bern\", \"at\": {\"lat\": 46}}}";
    static final String T1 = "{\"name\": \"get_time\", \"arguments\": {}}";

    @Test
    void hermes() throws Exception {
        Constraint c = ToolCallGrammar.constraint(choice("\"required\"", true), new HermesToolParser());
        assertTrue(accepts(c, "<tool_call>\n" + W1 + "\n</tool_call>"), c.gbnf());
        assertTrue(accepts(c, "<tool_call>\n" + W1 + "\n</tool_call>\n<tool_call>\n" + T1 + "\n</tool_call>"));
        assertFalse(accepts(c, "<tool_call>\n" + W1.replace("46", "\"46\"") + "\n</tool_call>"), "$ref'd schema not enforced");
        assertFalse(accepts(c, "<tool_call>\n" + W1.replace("get_weather", "get_wether") + "\n</tool_call>"));
        assertFalse(accepts(c, W1));
        assertFalse(accepts(c, "Sure! <tool_call>\n" + T1 + "\n</tool_call>"));
        Constraint one = ToolCallGrammar.constraint(choice("\"required\"", false), new HermesToolParser());
        assertFalse(accepts(one, "<tool_call>\n" + W1 + "\n</tool_call>\n<tool_call>\n" + T1 + "\n</tool_call>"));
        Constraint named = ToolCallGrammar.constraint(choice("{\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}", true), new HermesToolParser());
        assertTrue(accepts(named, "<tool_call>\n" + T1 + "\n</tool_call>"));
        assertFalse(accepts(named, "<tool_call>\n" + W1 + "\n</tool_call>"));
        assertFalse(accepts(named, "<tool_call>\n" + T1 + "\n</tool_call>\n<tool_call>\n" + T1 + "\n</tool_call>"), "named: one call");
        // the same request compiles to the same (cached) constraint
        assertSame(c, ToolCallGrammar.constraint(choice("\"required\"", true), new HermesToolParser()));
    }

    @Test
    void llama3AndMistral() throws Exception {
        Constraint l = ToolCallGrammar.constraint(choice("\"required\"", true), new Llama3JsonToolParser());
        String lw = W1.replace("\"arguments\"", "\"parameters\""), lt = T1.replace("\"arguments\"", "\"parameters\"");
        assertTrue(accepts(l, lw));
        assertTrue(accepts(l, lw + "; " + lt));
        assertFalse(accepts(l, W1));
        Constraint m = ToolCallGrammar.constraint(choice("\"required\"", true), new MistralToolParser());
        assertTrue(accepts(m, "[" + W1 + ", " + T1 + "]"));
        assertFalse(accepts(m, "[]"));
        assertFalse(accepts(m, "[TOOL_CALLS][" + W1 + "]"));
        // what the constraint admits, the parser reads as calls
        ToolCallStreamer s = new ToolCallStreamer(new MistralToolParser(), true, Integer.MAX_VALUE);
        s.finish("[" + W1 + ", " + T1 + "]");
        assertEquals(2, s.calls().size());
        assertNull(s.content());
    }

    @Test
    void qwen3MayStartWithItsToolCallToken() throws Exception {
        try (HfTokenizer t = HfTokenizer.load(GgufTestFiles.realTokenizer("qwen3"))) {
            int id = t.tokenId("<tool_call>");
            assertTrue(id > 0);
            Constraint c = ToolCallGrammar.constraint(choice("\"required\"", true), new HermesToolParser());
            TokenMatcher m = c.newMatcher(TokenVocabulary.of(t));
            assertTrue(m.allowedTokens().get(id), "the <tool_call> token is not allowed first");
            assertTrue(m.advance(id));
        }
    }
}
