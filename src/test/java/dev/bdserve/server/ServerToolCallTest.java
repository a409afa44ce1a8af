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
}
