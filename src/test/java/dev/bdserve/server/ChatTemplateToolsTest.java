package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.tokenizer.HfTokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A chat request with tools through real templates (Qwen3's from its tokenizer_config.json, Llama 3.2's): the
 * tools and the history's calls and results render as the template writes them, and the tool-call format is
 * detected from the template.
 */
class ChatTemplateToolsTest {
    static final String BODY = """
            {"messages": [{"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]},
              {"role": "tool", "tool_call_id": "call_1", "content": "{\\"temp\\": 21}"}],
             "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}""";

    static String render(ChatTemplate t, HfTokenizer tok) throws Exception {
        Prompts p = new Prompts(tok, OpenAiServer.Options.defaults("m").withChatTemplate(t));
        return p.chat((ObjectNode) Json.MAPPER.readTree(BODY)).text();
    }

    @Test
    void qwen3() throws Exception {
        Path dir = GgufTestFiles.realTokenizer("qwen3");
        ChatTemplate t = ChatTemplate.forModel(dir, null);
        assertInstanceOf(HermesToolParser.class, t.toolParser());
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            String s = render(t, tok);
            assertTrue(s.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\""), s);
            assertTrue(s.contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"), s);
            assertTrue(s.contains("<tool_response>\n{\"temp\": 21}\n</tool_response>"), s);
            assertTrue(s.endsWith("<|im_start|>assistant\n"), s);
        }
    }

    @Test
    void llama3_2() throws Exception {
        Path file = Path.of(ChatTemplateToolsTest.class.getResource("templates/llama3_2.jinja").toURI());
        ChatTemplate t = new ChatTemplate(Files.readString(file), "<|begin_of_text|>", "<|eot_id|>");
        assertInstanceOf(Llama3JsonToolParser.class, t.toolParser());
        assertInstanceOf(HermesToolParser.class, t.withToolCallParser("hermes").toolParser());
        assertInstanceOf(Llama3JsonToolParser.class, t.withToolCallParser("auto").toolParser());
        try (HfTokenizer tok = HfTokenizer.load(GgufTestFiles.realTokenizer("llama3"))) {
            String s = render(t, tok);
            assertTrue(s.contains("\"name\": \"get_weather\""), s);
            assertTrue(s.contains("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"), s);
            // a string is iterable to jinja2, so this template writes a tool result through tojson (as under Python)
            assertTrue(s.contains("<|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temp\\\": 21}\"<|eot_id|>"), s);
            assertTrue(s.contains("Respond in the format {\"name\": function name, \"parameters\""), s);
        }
    }
}
