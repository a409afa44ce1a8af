package dev.bdserve.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The tool-call parsers on outputs shaped as the models write them: valid calls, several, text around them,
 * malformed ones (which stay content); and the streamed reading, fed at every split point and token by token,
 * which must add up to the non-streamed result and never send part of a call as content.
 */
class ToolCallParserTest {
    static final ToolCallParser HERMES = new HermesToolParser(), LLAMA = new Llama3JsonToolParser(), MISTRAL = new MistralToolParser();

    /** The non-streamed reading: content (null when blank with calls) and calls as "name args". */
    record Result(String content, List<String> calls) {}

    static Result whole(ToolCallParser p, String text, boolean constrained, int maxCalls) {
        ToolCallStreamer s = new ToolCallStreamer(p, constrained, maxCalls);
        s.finish(text);
        return new Result(s.content(), s.calls().stream().map(c -> c.name() + " " + c.arguments()).toList());
    }

    static Result whole(ToolCallParser p, String text) { return whole(p, text, false, Integer.MAX_VALUE); }

    @Test
    void hermesCallsAndTextAround() {
        String out = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\", \"unit\": \"c\"}}\n</tool_call>\n"
                + "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        Result r = whole(HERMES, out);
        assertEquals("Let me check.\n", r.content());
        assertEquals(List.of("get_weather {\"city\":\"Zürich\",\"unit\":\"c\"}", "get_time {}"), r.calls());
        Result only = whole(HERMES, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>");
        assertNull(only.content());
        assertEquals(List.of("f {\"x\":[1,2]}"), only.calls());
        assertEquals(List.of("get_weather {\"city\":\"Zürich\",\"unit\":\"c\"}"), whole(HERMES, out, false, 1).calls());
    }

    @Test
    void hermesMalformedStaysContent() {
        String bad = "a <tool_call>{\"name\": \"f\", \"arguments\": {\"x\": </tool_call> b";
        assertEquals(new Result(bad, List.of()), whole(HERMES, bad));
        String noName = "<tool_call>{\"arguments\": {}}</tool_call>";
        assertEquals(new Result(noName, List.of()), whole(HERMES, noName));
        String unclosed = "x <tool_call>{\"name\": \"f\", \"arguments\": {}}";
        assertEquals(new Result(unclosed, List.of()), whole(HERMES, unclosed));
        assertEquals(new Result("plain <tool", List.of()), whole(HERMES, "plain <tool"));
        String trailing = "<tool_call>{\"name\": \"f\", \"arguments\": {}} and more</tool_call>";
        assertEquals(new Result(trailing, List.of()), whole(HERMES, trailing));
        // a good call next to a bad block: the call is read, the bad block is content
        Result mixed = whole(HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>oops</tool_call>");
        assertEquals(List.of("f {}"), mixed.calls());
        assertEquals("<tool_call>oops</tool_call>", mixed.content());
    }

    @Test
    void llama3JsonCalls() {
        assertEquals(new Result(null, List.of("get_weather {\"city\":\"Paris\"}")),
                whole(LLAMA, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"));
        assertEquals(new Result(null, List.of("a {\"x\":1}", "b {}")),
                whole(LLAMA, "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"arguments\": {}}"));
        // arguments given as JSON text are read as the object they spell
        assertEquals(List.of("a {\"x\":1}"), whole(LLAMA, "{\"name\": \"a\", \"parameters\": \"{\\\"x\\\": 1}\"}").calls());
        String notCall = "{\"answer\": 42}";
        assertEquals(new Result(notCall, List.of()), whole(LLAMA, notCall));
        assertEquals(new Result("The answer is {\"name\": \"a\", \"parameters\": {}}", List.of()),
                whole(LLAMA, "The answer is {\"name\": \"a\", \"parameters\": {}}"));
        Result after = whole(LLAMA, "{\"name\": \"a\", \"parameters\": {}} and then some text");
        assertEquals(List.of("a {}"), after.calls());
        assertEquals(" and then some text", after.content());
        assertEquals(new Result("{\"name\": \"a\", \"parameters\": {", List.of()), whole(LLAMA, "{\"name\": \"a\", \"parameters\": {"));
    }

    @Test
    void mistralCalls() {
        String out = "Sure. [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"q\": \"x]\"}}, {\"name\": \"b\", \"arguments\": {}}]";
        assertEquals(new Result("Sure. ", List.of("a {\"q\":\"x]\"}", "b {}")), whole(MISTRAL, out));
        assertEquals(new Result(null, List.of("a {}")), whole(MISTRAL, "[{\"name\": \"a\", \"arguments\": {}}]", true, 9));
        String bad = "[TOOL_CALLS] not a list";
        assertEquals(new Result(bad, List.of()), whole(MISTRAL, bad));
        Result half = whole(MISTRAL, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}, {\"nam");
        assertEquals(List.of("a {}"), half.calls());
        assertEquals(", {\"nam", half.content());
        String id = MISTRAL.newId();
        assertTrue(id.matches("[A-Za-z0-9]{9}"), id);
        assertTrue(HERMES.newId().matches("call_[A-Za-z0-9]{24}"));
    }

    @Test
    void detectsTheFormatFromTheTemplate() {
        assertInstanceOf(HermesToolParser.class, ToolCallParser.detect("{{ '<tool_call>' }}"));
        assertInstanceOf(MistralToolParser.class, ToolCallParser.detect("{{ '[TOOL_CALLS]' }}"));
        assertInstanceOf(Llama3JsonToolParser.class, ToolCallParser.detect("{\"name\": function name, \"parameters\": ...}"));
        assertNull(ToolCallParser.detect("{{ messages }}"));
        assertNull(ToolCallParser.named("auto"));
        assertInstanceOf(MistralToolParser.class, ToolCallParser.named("mistral"));
        assertThrows(IllegalArgumentException.class, () -> ToolCallParser.named("pythonic"));
    }

    static final List<Object[]> CASES = List.of(
            new Object[]{HERMES, false, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool_call>"},
            new Object[]{HERMES, false, "a <tool_call>{\"name\": \"f\", \"arguments\": {\"x\": </tool_call> b <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> tail <tool_"},
            new Object[]{HERMES, false, "just text with < and <tool but no call"},
            new Object[]{LLAMA, false, "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"s\": \"}{;\"}}; {\"name\": \"b\", \"parameters\": {}}"},
            new Object[]{LLAMA, false, "  {\"name\": \"a\", \"parameters\": {}} then text"},
            new Object[]{LLAMA, false, "{\"not\": \"a call\"} more"},
            new Object[]{MISTRAL, false, "Sure. [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"q\": \"x]\"}}, {\"name\": \"b\", \"arguments\": {}}] bye"},
            new Object[]{MISTRAL, false, "[TOOL_CALLS] oops"},
            new Object[]{MISTRAL, true, "[{\"name\": \"a\", \"arguments\": {}}]"});

    /** Streamed pieces put together: content, calls, and whether any content piece holds part of a call. */
    static Result streamed(ToolCallParser p, boolean constrained, String text, List<Integer> cuts) {
        ToolCallStreamer s = new ToolCallStreamer(p, constrained, Integer.MAX_VALUE);
        StringBuilder content = new StringBuilder();
        List<String> calls = new ArrayList<>();
        List<ToolCallStreamer.Out> outs = new ArrayList<>();
        for (int cut : cuts) outs.add(s.feed(text.substring(0, cut)));
        outs.add(s.finish(text));
        for (ToolCallStreamer.Out o : outs) {
            content.append(o.content());
            assertEquals(calls.size(), o.firstIndex());
            for (ToolCall c : o.calls()) calls.add(c.name() + " " + c.arguments());
        }
        String cs = content.toString();
        return new Result(cs.isBlank() && !calls.isEmpty() ? null : cs, calls);
    }

    @Test
    void streamingAtEverySplitPointMatchesTheWholeReading() {
        for (Object[] c : CASES) {
            ToolCallParser p = (ToolCallParser) c[0];
            boolean constrained = (boolean) c[1];
            String text = (String) c[2];
            Result expect = whole(p, text, constrained, Integer.MAX_VALUE);
            for (int cut = 0; cut <= text.length(); cut++)
                assertEquals(expect, streamed(p, constrained, text, List.of(cut)), p.name() + " split at " + cut + ": " + text);
            List<Integer> every = new ArrayList<>();
            for (int i = 1; i <= text.length(); i++) every.add(i);
            assertEquals(expect, streamed(p, constrained, text, every), p.name() + " char by char: " + text);
        }
    }

    @Test
    void streamingNeverSendsAMarkersStartAsContent() {
        String text = "Hi <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
        ToolCallStreamer s = new ToolCallStreamer(HERMES, false, Integer.MAX_VALUE);
        StringBuilder sent = new StringBuilder();
        for (int i = 1; i <= text.length(); i++) {
            ToolCallStreamer.Out o = s.feed(text.substring(0, i));
            sent.append(o.content());
            assertFalse(sent.toString().contains("<"), "sent '" + sent + "' at " + i);
        }
        assertEquals("Hi ", sent.toString());
        assertEquals(1, s.calls().size());
    }
}
