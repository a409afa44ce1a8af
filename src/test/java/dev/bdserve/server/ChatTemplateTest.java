package dev.bdserve.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ChatTemplateTest {
    static final List<Map<String, Object>> MSGS = List.of(
            Map.of("role", "system", "content", "Be brief."),
            Map.of("role", "user", "content", "Hi"),
            Map.of("role", "assistant", "content", "Hello!"),
            Map.of("role", "user", "content", "Tell a story"));

    /** ChatML (Qwen-style), with the whitespace control HF templates rely on. */
    static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Llama-2 style: bos_token, raise_exception, loop indices, trim. */
    static final String LLAMA2 = """
            {% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}
            {% for message in loop_messages %}
            {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}
            {% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}
            {% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}
            {% endfor %}""";

    @Test
    void plainFormatWithoutATemplate() {
        assertEquals("system: Be brief.\nuser: Hi\nassistant: Hello!\nuser: Tell a story\nassistant: ", ChatTemplate.plain().render(MSGS, true));
        assertEquals("user: Hi\n", ChatTemplate.plain().render(List.of(Map.of("role", "user", "content", "Hi")), false));
    }

    @Test
    void chatml() {
        ChatTemplate t = new ChatTemplate(CHATML, "", "<|im_end|>");
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", t.render(List.of(Map.of("role", "user", "content", "Hi")), true));
    }

    @Test
    void llama2WithSystemPromptAndRaiseException() {
        ChatTemplate t = new ChatTemplate(LLAMA2, "<s>", "</s>");
        assertEquals("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Tell a story [/INST]", t.render(MSGS, true));
        ApiException e = assertThrows(ApiException.class, () -> t.render(List.of(Map.of("role", "assistant", "content", "x")), true));
        assertEquals(400, e.status());
        assertEquals("Conversation roles must alternate user/assistant/user/assistant/...", e.getMessage());
    }

    @Test
    void templateFromTokenizerConfig(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": %s}""".formatted(
                new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(CHATML)));
        ChatTemplate t = ChatTemplate.forModel(dir, null);
        assertFalse(t.isPlain());
        assertEquals("<s>", t.bosToken());
        assertTrue(t.render(List.of(Map.of("role", "user", "content", "Hi")), true).endsWith("<|im_start|>assistant\n"));
        Path file = Files.writeString(dir.resolve("override.jinja"), "{{ messages[0]['content'] }}!");
        assertEquals("Hi!", ChatTemplate.forModel(dir, file).render(List.of(Map.of("role", "user", "content", "Hi")), true));
        assertTrue(ChatTemplate.forModel(dir.resolve("model.bin"), null).render(List.of(Map.of("role", "user", "content", "Hi")), true).contains("<|im_start|>"));
    }

    @Test
    void aTemplateThatDoesNotParseFailsEachChatWithItsReason() {
        ChatTemplate t = new ChatTemplate("{% if x %}open", "", "");
        assertEquals("the chat template does not parse: line 1: missing 'endif'", t.parseError());
        ApiException e = assertThrows(ApiException.class, () -> t.render(List.of(Map.of("role", "user", "content", "Hi")), true));
        assertEquals(400, e.status());
        assertEquals(t.parseError(), e.getMessage());
        assertNull(new ChatTemplate(CHATML, "", "").parseError());
    }

    /** The case: Qwen3's {@code namespace(...)} with keyword arguments, slicing and string methods. */
    @Test
    void namespaceWithKeywordArgumentsAndPythonStringMethods() {
        ChatTemplate t = new ChatTemplate("""
                {%- set ns = namespace(last=-1, n=messages|length - 1) %}
                {%- for m in messages[::-1] %}{% if ns.last < 0 and m.content.startswith('Q') %}{% set ns.last = ns.n - loop.index0 %}{% endif %}{% endfor %}
                {{- ns.last }}:{{ messages[ns.last].content.split(':')[-1].strip() }}""", "", "");
        assertEquals("1:two", t.render(List.of(Map.of("role", "user", "content", "Q: one"), Map.of("role", "user", "content", "Q:  two "),
                Map.of("role", "user", "content", "x")), false));
    }
}
