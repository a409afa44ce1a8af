package dev.bdserve.server;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionMessageToolCall;
import com.openai.models.chat.completions.ChatCompletionNamedToolChoice;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.bdserve.server.ServerApiTest.assertError;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Tool calls end to end with the official OpenAI Java client on stories260K, whose stories are never tool calls by
 * themselves: with {@code tool_choice} "required" or a named function the output is constrained to Hermes call
 * text, so the response must hold calls whose arguments the networknt validator accepts for the function's
 * schema, streamed or not, with {@code finish_reason} tool_calls; bad requests are 400s naming the problem.
 */
class ServerToolCallTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);
    static final Map<String, String> SCHEMAS = new LinkedHashMap<>();
    static {
        SCHEMAS.put("get_weather", """
                {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8},
                 "days": {"type": "integer", "minimum": 1, "maximum": 7}, "unit": {"enum": ["c", "f"]}},
                 "required": ["city", "days"]}""");
        SCHEMAS.put("get_time", """
                {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}, "tags": {"type": "array",
                 "items": {"type": "boolean"}, "maxItems": 2}}, "required": ["zone", "tags"]}""");
    }
    static TestServer ts;

    @BeforeAll
    static void start() {
        ts = new TestServer(1, TestServer.config(), o -> o.withChatTemplate(ChatTemplate.plain().withToolCallParser("hermes")));
    }

    @AfterAll
    static void stop() { ts.close(); }

    static ChatCompletionCreateParams.Builder request(int maxTokens) throws Exception {
        ChatCompletionCreateParams.Builder b = ChatCompletionCreateParams.builder().model(TestServer.MODEL)
                .addUserMessage("Once upon a time").maxCompletionTokens(maxTokens).temperature(0.0);
        for (var e : SCHEMAS.entrySet()) {
            Map<String, Object> schema = JSON.readValue(e.getValue(), new TypeReference<>() {});
            FunctionParameters.Builder p = FunctionParameters.builder();
            schema.forEach((k, v) -> p.putAdditionalProperty(k, JsonValue.from(v)));
            b.addFunctionTool(FunctionDefinition.builder().name(e.getKey()).description("a tool").parameters(p.build()).build());
        }
        return b;
    }

    static void assertValidCall(String name, String arguments) {
        assertTrue(SCHEMAS.containsKey(name), name);
        var errors = REGISTRY.getSchema(SCHEMAS.get(name), InputFormat.JSON).validate(arguments, InputFormat.JSON);
        assertTrue(errors.isEmpty(), name + " " + arguments + ": " + errors);
    }

    static List<ChatCompletionMessageFunctionToolCall> calls(ChatCompletion c) {
        return c.choices().getFirst().message().toolCalls().orElseThrow().stream().map(ChatCompletionMessageToolCall::asFunction).toList();
    }

    @Test
    void requiredReturnsOneValidCall() throws Exception {
        ChatCompletion c = ts.client().chat().completions().create(request(400)
                .toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).parallelToolCalls(false).build());
        assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, c.choices().getFirst().finishReason());
        List<ChatCompletionMessageFunctionToolCall> calls = calls(c);
        assertEquals(1, calls.size());
        assertTrue(calls.getFirst().id().matches("call_[A-Za-z0-9]{24}"), calls.getFirst().id());
        assertValidCall(calls.getFirst().function().name(), calls.getFirst().function().arguments());
        assertTrue(c.choices().getFirst().message().content().isEmpty(), c.toString());
    }

    @Test
    void requiredWithParallelCallsGivesValidCalls() throws Exception {
        ChatCompletion c = ts.client().chat().completions().create(request(400).toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).build());
        List<ChatCompletionMessageFunctionToolCall> calls = calls(c);
        assertFalse(calls.isEmpty());
        for (var call : calls) assertValidCall(call.function().name(), call.function().arguments());
        var finish = c.choices().getFirst().finishReason();
        assertTrue(finish.equals(ChatCompletion.Choice.FinishReason.TOOL_CALLS) || finish.equals(ChatCompletion.Choice.FinishReason.LENGTH), finish.toString());
    }

    @Test
    void namedFunctionIsCalled() throws Exception {
        ChatCompletion c = ts.client().chat().completions().create(request(400).toolChoice(ChatCompletionNamedToolChoice.builder()
                .function(ChatCompletionNamedToolChoice.Function.builder().name("get_time").build()).build()).build());
        List<ChatCompletionMessageFunctionToolCall> calls = calls(c);
        assertEquals(1, calls.size());
        assertEquals("get_time", calls.getFirst().function().name());
        assertValidCall("get_time", calls.getFirst().function().arguments());
        assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, c.choices().getFirst().finishReason());
    }

    @Test
    void streamedNamedCallAddsUpToAValidCall() throws Exception {
        Map<Long, String> ids = new TreeMap<>(), names = new TreeMap<>();
        Map<Long, StringBuilder> args = new TreeMap<>();
        StringBuilder content = new StringBuilder();
        List<ChatCompletionChunk.Choice.FinishReason> finishes = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = ts.client().chat().completions().createStreaming(request(400)
                .toolChoice(ChatCompletionNamedToolChoice.builder()
                        .function(ChatCompletionNamedToolChoice.Function.builder().name("get_weather").build()).build()).build())) {
            s.stream().forEach(chunk -> {
                for (ChatCompletionChunk.Choice ch : chunk.choices()) {
                    ch.delta().content().ifPresent(content::append);
                    ch.finishReason().ifPresent(finishes::add);
                    for (var d : ch.delta().toolCalls().orElse(List.of())) {
                        d.id().ifPresent(id -> assertNull(ids.put(d.index(), id), "a second id for call " + d.index()));
                        d.function().flatMap(ChatCompletionChunk.Choice.Delta.ToolCall.Function::name).ifPresent(n -> names.put(d.index(), n));
                        d.function().flatMap(ChatCompletionChunk.Choice.Delta.ToolCall.Function::arguments)
                                .ifPresent(a -> args.computeIfAbsent(d.index(), k -> new StringBuilder()).append(a));
                    }
                }
            });
        }
        assertEquals(List.of(ChatCompletionChunk.Choice.FinishReason.TOOL_CALLS), finishes);
        assertEquals(Map.of(0L, "get_weather"), names);
        assertTrue(ids.get(0L).startsWith("call_"));
        assertEquals("", content.toString());
        assertValidCall("get_weather", args.get(0L).toString());
    }

    @Test
    void autoWithoutACallIsPlainContent() throws Exception {
        ChatCompletion c = ts.client().chat().completions().create(request(16).toolChoice(ChatCompletionToolChoiceOption.Auto.AUTO).build());
        var msg = c.choices().getFirst().message();
        assertTrue(msg.toolCalls().isEmpty() || msg.toolCalls().get().isEmpty(), c.toString());
        assertFalse(msg.content().orElse("").isEmpty());
        assertEquals(ChatCompletion.Choice.FinishReason.LENGTH, c.choices().getFirst().finishReason());
    }

    static final String TOOL = "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}";

    static String body(String rest) {
        return "{\"model\":\"stories260K\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]," + rest + "}";
    }

    @Test
    void badToolRequestsAre400s() throws Exception {
        assertError(ts.post("/v1/chat/completions", body("\"tools\":[" + TOOL + "],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}")),
                400, "tool_choice: no function named 'g' in tools (tools: f)");
        assertError(ts.post("/v1/chat/completions", body("\"tools\":[" + TOOL + "],\"tool_choice\":\"sometimes\"")),
                400, "tool_choice: expected \"none\", \"auto\", \"required\"");
        assertError(ts.post("/v1/chat/completions", body("\"tool_choice\":\"required\"")),
                400, "tool_choice: \"required\" needs at least one tool in tools");
        assertError(ts.post("/v1/chat/completions", body("\"tools\":{}")), 400, "tools: expected a list of tool definitions, got an object");
        assertError(ts.post("/v1/chat/completions", body("\"tools\":[" + TOOL + "],\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_object\"}")),
                400, "cannot be combined with response_format or structured outputs");
        assertError(ts.post("/v1/chat/completions", body("\"tools\":[{\"type\":\"function\",\"function\":{\"parameters\":{}}}]")),
                400, "tools[0].function.name: this field is required");
        assertError(ts.post("/v1/chat/completions", body("\"tools\":[" + TOOL + "," + TOOL + "]")), 400, "tools[1].function.name: 'f' is defined twice");
        String badSchema = "{\"type\":\"function\",\"function\":{\"name\":\"h\",\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\",\"contentEncoding\":\"base64\"}}}}}";
        assertError(ts.post("/v1/chat/completions", body("\"tools\":[" + TOOL + "," + badSchema + "],\"tool_choice\":\"required\"")), 400, "tools[1].function.parameters: json_schema: unsupported keyword contentEncoding (at /properties/x/contentEncoding)");
        // the same schema is fine when the output is not constrained
        assertEquals(200, ts.post("/v1/chat/completions", body("\"tools\":[" + badSchema + "],\"tool_choice\":\"auto\"")).statusCode());
        JsonNode none = JSON.readTree(ts.post("/v1/chat/completions", body("\"tools\":[" + TOOL + "],\"tool_choice\":\"none\"")).body());
        assertTrue(none.at("/choices/0/message/content").isTextual(), none.toString());
    }

    /** One request of the mixed batch: a label and what it returns, text or calls, as a comparable string. */
    record Job(String label, java.util.concurrent.Callable<String> run) {}

    static String chatOutcome(ChatCompletion c) {
        var ch = c.choices().getFirst();
        StringBuilder sb = new StringBuilder(ch.finishReason().toString()).append('|').append(ch.message().content().orElse(""));
        for (var call : ch.message().toolCalls().orElse(List.of())) {
            var f = call.asFunction().function();
            sb.append('|').append(f.name()).append(f.arguments());
        }
        return sb.toString();
    }

    static String completionOutcome(com.openai.models.completions.Completion c) {
        return c.choices().getFirst().finishReason() + "|" + c.choices().getFirst().text();
    }

    /**
     * Constraints and tool calls on LoRA adapters: a tool call, a JSON schema, a regex and free text, each on one of two
     * adapters or on the base model, batched together, get exactly what each gets alone; constrained outputs are valid;
     * the adapters change the output; the metrics count them per adapter.
     */
    @Test
    void constrainedRequestsAndToolCallsOnAdaptersInOneMixedBatchGetWhatTheyGetAlone(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        ts.engine.registerAdapter("dense", TestServer.synthAdapter(tmp.resolve("dense"), 11, 0), false);
        ts.engine.registerAdapter("bd", TestServer.synthAdapter(tmp.resolve("bd"), 12, 4), false);
        var client = ts.client();
        String person = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":10},"
                + "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";
        java.util.function.Function<String, ChatCompletionCreateParams> required = model -> {
            try {
                return request(300).model(model).toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).parallelToolCalls(false).build();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        };
        java.util.function.BiFunction<String, Map<String, JsonValue>, String> complete = (model, extra) -> {
            var b = com.openai.models.completions.CompletionCreateParams.builder().model(model).prompt("Once upon a time").maxTokens(40).temperature(0);
            extra.forEach(b::putAdditionalBodyProperty);
            return completionOutcome(client.completions().create(b.build()));
        };
        Map<String, JsonValue> regex = Map.of("guided_regex", StructuredOutputServerTest.json("\"[A-Z][a-z]{2,8}( [a-z]{2,8}){1,4}\\\\.\""));
        List<Job> jobs = List.of(
                new Job("tool call on dense", () -> chatOutcome(client.chat().completions().create(required.apply("dense")))),
                new Job("tool call on bd", () -> chatOutcome(client.chat().completions().create(required.apply("bd")))),
                new Job("tool call on base", () -> chatOutcome(client.chat().completions().create(required.apply(TestServer.MODEL)))),
                new Job("schema on bd", () -> chatOutcome(client.chat().completions().create(ChatCompletionCreateParams.builder().model("bd")
                        .addUserMessage("Who is Lily?").maxCompletionTokens(100).temperature(0)
                        .responseFormat(StructuredOutputServerTest.schemaFormat(person)).build()))),
                new Job("regex on dense", () -> complete.apply("dense", regex)),
                new Job("regex on base", () -> complete.apply(TestServer.MODEL, regex)),
                new Job("free on bd", () -> complete.apply("bd", Map.of())),
                new Job("free on dense", () -> complete.apply("dense", Map.of())),
                new Job("free on base", () -> complete.apply(TestServer.MODEL, Map.of())));
        Map<String, String> alone = new LinkedHashMap<>();
        for (Job j : jobs) alone.put(j.label(), j.run().call());

        for (String who : List.of("dense", "bd", "base")) {
            String[] parts = alone.get("tool call on " + who).split("\\|", 4);
            assertEquals("tool_calls", parts[0], who + ": " + alone.get("tool call on " + who));
            assertEquals("", parts[1]);
            String name = parts[2].substring(0, parts[2].indexOf('{'));
            assertValidCall(name, parts[2].substring(name.length()));
        }
        String[] schema = alone.get("schema on bd").split("\\|", 2);
        assertEquals("stop", schema[0], alone.get("schema on bd"));
        assertTrue(REGISTRY.getSchema(person, InputFormat.JSON).validate(schema[1], InputFormat.JSON).isEmpty(), schema[1]);
        for (String who : List.of("dense", "base")) {
            String[] r = alone.get("regex on " + who).split("\\|", 2);
            assertEquals("stop", r[0], who + ": " + alone.get("regex on " + who));
            assertTrue(r[1].matches("[A-Z][a-z]{2,8}( [a-z]{2,8}){1,4}\\."), r[1]);
        }
        assertNotEquals(alone.get("free on base"), alone.get("free on bd"), "the adapter bd changes the text");
        assertNotEquals(alone.get("free on base"), alone.get("free on dense"), "the adapter dense changes the text");
        assertNotEquals(alone.get("free on bd"), alone.get("free on dense"));

        var pool = java.util.concurrent.Executors.newFixedThreadPool(jobs.size());
        try {
            for (int round = 0; round < 2; round++) {
                List<java.util.concurrent.Future<String>> fs = new ArrayList<>();
                for (Job j : jobs) fs.add(pool.submit(j.run()));
                for (int i = 0; i < jobs.size(); i++)
                    assertEquals(alone.get(jobs.get(i).label()), fs.get(i).get(), jobs.get(i).label() + " in round " + round);
            }
        } finally {
            pool.shutdownNow();
        }
        String m = ts.get("/metrics").body();
        for (String a : List.of("dense", "bd")) {
            assertTrue(m.matches("(?s).*bdserve:constrained_requests_total\\{adapter=\"" + a + "\",kind=\"[a-z_]+\",model_name=\"stories260K\"} [1-9].*"), a + ":\n" + m);
            assertTrue(m.matches("(?s).*bdserve:structured_mask_seconds_count\\{adapter=\"" + a + "\",model_name=\"stories260K\"} [1-9].*"), a + ":\n" + m);
        }
        assertTrue(m.matches("(?s).*bdserve:constrained_requests_total\\{adapter=\"bd\",kind=\"json_schema\",model_name=\"stories260K\"} [1-9].*"), m);
        assertTrue(m.matches("(?s).*bdserve:constrained_requests_total\\{adapter=\"dense\",kind=\"regex\",model_name=\"stories260K\"} [1-9].*"), m);
    }
}
