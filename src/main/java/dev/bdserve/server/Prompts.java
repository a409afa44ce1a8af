package dev.bdserve.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A request's prompts as token ids: /v1/completions' {@code prompt} (a string, a list of strings, a list of token ids
 * or a list of such lists), or /v1/chat/completions' {@code messages} rendered by the chat template.
 */
final class Prompts {
    private final Tokenizer tok;
    private final OpenAiServer.Options options;

    Prompts(Tokenizer tok, OpenAiServer.Options options) {
        this.tok = tok;
        this.options = options;
    }

    /** The prompts of a /v1/completions body. */
    List<Prompt> completion(ObjectNode b) {
        List<Prompt> prompts = new ArrayList<>();
        if (Params.field(b, "suffix") != null) throw ApiException.badParam("suffix", "suffix is not currently supported");
        JsonNode p = Params.field(b, "prompt");
        if (p == null) throw ApiException.badParam("prompt", "prompt: this field is required");
        if (p.isTextual()) prompts.add(text(p.asText()));
        else if (p.isArray()) {
            if (p.isEmpty()) throw ApiException.badParam("prompt", "prompt: the list must not be empty");
            if (p.get(0).isIntegralNumber()) prompts.add(new Prompt(tokenIds(p), null));
            else for (JsonNode e : p) {
                if (e.isTextual()) prompts.add(text(e.asText()));
                else if (e.isArray()) prompts.add(new Prompt(tokenIds(e), null));
                else throw ApiException.badParam("prompt", "prompt: expected a string, a list of strings, a list of token ids or a list of lists of token ids");
            }
        } else throw ApiException.badParam("prompt", "prompt: expected a string, a list of strings, a list of token ids or a list of lists of token ids");
        return prompts;
    }

    private Prompt text(String s) {
        if (s.length() > options.maxPromptChars())
            throw ApiException.badParam("prompt", "The prompt has " + s.length() + " characters; at most " + options.maxPromptChars() + " are accepted.");
        return new Prompt(tok.encode(s, true), s);
    }

    private static int[] tokenIds(JsonNode arr) {
        if (!arr.isArray()) throw ApiException.badParam("prompt", "prompt: expected a list of token ids");
        int[] ids = new int[arr.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = arr.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt())
                throw ApiException.badParam("prompt", "prompt: token ids must be integers, got " + Params.describe(t));
            ids[i] = t.asInt();
        }
        return ids;
    }

    /**
     * The one prompt of a /v1/chat/completions body: its messages through the chat template, with the request's
     * {@code tools} and {@code chat_template_kwargs}. Messages reach the template with all their fields (tool_calls,
     * tool_call_id, name, reasoning_content, ...); content parts are joined into one string, and tool-call arguments
     * sent as JSON text are parsed into objects, as vLLM does, so that templates can {@code tojson} them.
     */
    Prompt chat(ObjectNode b) {
        JsonNode msgs = Params.field(b, "messages");
        if (msgs == null) throw ApiException.badParam("messages", "messages: this field is required");
        if (!msgs.isArray() || msgs.isEmpty()) throw ApiException.badParam("messages", "messages: expected a non-empty list of messages");
        List<Map<String, Object>> list = new ArrayList<>();
        for (JsonNode m : msgs) {
            if (!m.isObject()) throw ApiException.badParam("messages", "messages: each message must be an object");
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) throw ApiException.badParam("messages", "messages: each message needs a string 'role'");
            JsonNode c = m.get("content");
            String content;
            if (c == null || c.isNull()) content = "";
            else if (c.isTextual()) content = c.asText();
            else if (c.isArray()) {
                StringBuilder sb = new StringBuilder();
                for (JsonNode part : c) {
                    if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual())
                        throw ApiException.badParam("messages", "messages: only text content parts are supported");
                    if (!sb.isEmpty()) sb.append('\n');
                    sb.append(part.get("text").asText());
                }
                content = sb.toString();
            } else throw ApiException.badParam("messages", "messages: 'content' must be a string or a list of content parts");
            Map<String, Object> mm = new LinkedHashMap<>();
            m.properties().forEach(e -> mm.put(e.getKey(), plain(e.getValue())));
            mm.put("content", content);
            if (m.has("tool_calls")) mm.put("tool_calls", toolCalls(m.get("tool_calls")));
            list.add(mm);
        }
        JsonNode toolsNode = Params.field(b, "tools");
        List<Object> tools = null;
        if (toolsNode != null && !toolsNode.isNull()) {
            if (!toolsNode.isArray()) throw ApiException.badParam("tools", "tools: expected a list of tool definitions");
            for (JsonNode t : toolsNode)
                if (!t.isObject()) throw ApiException.badParam("tools", "tools: each tool definition must be an object");
            @SuppressWarnings("unchecked") List<Object> l = (List<Object>) plain(toolsNode);
            tools = l;
        }
        JsonNode kw = Params.field(b, "chat_template_kwargs");
        Map<String, Object> kwargs = Map.of();
        if (kw != null && !kw.isNull()) {
            if (!kw.isObject()) throw ApiException.badParam("chat_template_kwargs", "chat_template_kwargs: expected an object of template arguments");
            @SuppressWarnings("unchecked") Map<String, Object> k = (Map<String, Object>) plain(kw);
            k.remove("messages");
            kwargs = k;
        }
        boolean addGen = Params.optBool(b, "add_generation_prompt", true);
        String text = options.chatTemplate().render(list, tools, addGen, kwargs);
        if (text.length() > options.maxPromptChars())
            throw ApiException.badParam("messages", "The messages have " + text.length() + " characters; at most " + options.maxPromptChars() + " are accepted.");
        String bos = options.chatTemplate().bosToken();
        boolean hasBos = !bos.isEmpty() && text.startsWith(bos);
        if (hasBos) text = text.substring(bos.length());
        int[] ids = tok.encode(text, true);
        return new Prompt(ids, text);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A JSON value as the template sees it: maps, lists, strings, numbers, booleans and null. */
    private static Object plain(JsonNode n) { return JSON.convertValue(n, Object.class); }

    /** An assistant message's tool calls, with {@code function.arguments} as an object (JSON text parsed, empty: {}). */
    private static Object toolCalls(JsonNode calls) {
        if (calls.isNull()) return null;
        if (!calls.isArray()) throw ApiException.badParam("messages", "messages: 'tool_calls' must be a list");
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < calls.size(); i++) {
            JsonNode call = calls.get(i);
            if (!call.isObject()) throw ApiException.badParam("messages", "messages: each tool call must be an object");
            @SuppressWarnings("unchecked") Map<String, Object> c = (Map<String, Object>) plain(call);
            if (c.get("function") instanceof Map<?, ?> f) {
                @SuppressWarnings("unchecked") Map<String, Object> fn = (Map<String, Object>) f;
                Object args = fn.get("arguments");
                if (args == null || "".equals(args)) fn.put("arguments", new LinkedHashMap<>());
                else if (args instanceof String text) {
                    try {
                        fn.put("arguments", JSON.readValue(text, Object.class));
                    } catch (JsonProcessingException e) {
                        throw ApiException.badParam("messages", "messages: tool_calls[" + i + "].function.arguments is not valid JSON: " + e.getOriginalMessage());
                    }
                }
            }
            out.add(c);
        }
        return out;
    }
}
