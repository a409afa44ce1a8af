package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.bdserve.server.ServerApiTest.assertError;
import static org.junit.jupiter.api.Assertions.*;

/**
 * /v1/chat/completions through Qwen3's real template: messages keep their tool calls (arguments sent as JSON text
 * reach the template as objects), {@code tools} and {@code chat_template_kwargs} reach it, and its errors are 400s.
 * With {@code chat_template_kwargs: {"show": true}} the template fails with what it was given, so the test sees it.
 */
class ServerChatTemplateTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static TestServer ts;

    @BeforeAll
    static void start() throws Exception {
        Path qwen3 = Path.of(ServerChatTemplateTest.class.getResource("templates/qwen3.jinja").toURI());
        String show = "{% if show %}{{ raise_exception('messages=' ~ messages | tojson ~ ' tools=' ~ tools | tojson"
                + " ~ ' enable_thinking=' ~ enable_thinking ~ ' add_generation_prompt=' ~ add_generation_prompt) }}{% endif %}"
                + "{% if broken %}{{ messages[0].content.no_such_method() }}{% endif %}";
        ChatTemplate t = new ChatTemplate(show + Files.readString(qwen3), null, "<|im_end|>");
        ts = new TestServer(1, TestServer.config(), o -> o.withChatTemplate(t));
    }

    @AfterAll
    static void stop() { ts.close(); }

    static final String MESSAGES = """
            "messages":[{"role":"user","content":"Weather in Zürich?"},
              {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\": \\"Zürich\\"}"}}]},
              {"role":"tool","tool_call_id":"c1","content":"21 °C"}]""";
    static final String TOOLS = """
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""";

    @Test
    void toolsToolCallsAndKwargsReachTheTemplate() throws Exception {
        HttpResponse<String> r = ts.post("/v1/chat/completions", "{\"model\":\"stories260K\",\"max_tokens\":2," + MESSAGES + "," + TOOLS
                + ",\"chat_template_kwargs\":{\"show\":true,\"enable_thinking\":false}}");
        assertEquals(400, r.statusCode(), r.body());
        String msg = JSON.readTree(r.body()).at("/error/message").asText();
        assertTrue(msg.contains("\"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}}]"), msg);
        assertTrue(msg.contains("{\"role\": \"assistant\", \"content\": \"\""), msg);
        assertTrue(msg.contains("\"tool_call_id\": \"c1\""), msg);
        assertTrue(msg.contains(" tools=[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""), msg);
        assertTrue(msg.endsWith(" enable_thinking=False add_generation_prompt=True"), msg);
    }

    @Test
    void qwen3RendersToolTurnsWithThinkingOff() throws Exception {
        // (the tools' system prompt alone is longer than stories260K's 512 positions)
        HttpResponse<String> r = ts.post("/v1/chat/completions", "{\"model\":\"stories260K\",\"max_tokens\":2,\"temperature\":0," + MESSAGES
                + ",\"chat_template_kwargs\":{\"enable_thinking\":false}}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode usage = JSON.readTree(r.body()).get("usage");
        HttpResponse<String> plain = ts.post("/v1/chat/completions", """
                {"model":"stories260K","max_tokens":2,"messages":[{"role":"user","content":"Weather in Zürich?"}]}""");
        assertEquals(200, plain.statusCode(), plain.body());
        assertTrue(usage.get("prompt_tokens").asInt() > JSON.readTree(plain.body()).at("/usage/prompt_tokens").asInt() + 20,
                "the tool call and the tool's answer are in the prompt: " + usage);
    }

    @Test
    void badInputsAndTemplateErrorsAre400() {
        assertError(ts.post("/v1/chat/completions", """
                {"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":{"broken":true}}"""), 400,
                "the chat template failed: 'no_such_method' is undefined");
        assertError(ts.post("/v1/chat/completions", """
                {"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":[1]}"""), 400,
                "chat_template_kwargs: expected an object of template arguments");
        assertError(ts.post("/v1/chat/completions", """
                {"messages":[{"role":"user","content":"x"}],"tools":{"a":1}}"""), 400, "tools: expected a list of tool definitions");
        assertError(ts.post("/v1/chat/completions", """
                {"messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{oops"}}]}]}"""), 400,
                "messages: tool_calls[0].function.arguments is not valid JSON");
    }
}
