package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
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

    /** The one prompt of a /v1/chat/completions body: its messages through the chat template. */
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
            mm.put("role", role.asText());
            mm.put("content", content);
            if (m.hasNonNull("name") && m.get("name").isTextual()) mm.put("name", m.get("name").asText());
            list.add(mm);
        }
        boolean addGen = Params.optBool(b, "add_generation_prompt", true);
        String text = options.chatTemplate().render(list, addGen);
        if (text.length() > options.maxPromptChars())
            throw ApiException.badParam("messages", "The messages have " + text.length() + " characters; at most " + options.maxPromptChars() + " are accepted.");
        String bos = options.chatTemplate().bosToken();
        boolean hasBos = !bos.isEmpty() && text.startsWith(bos);
        if (hasBos) text = text.substring(bos.length());
        int[] ids = tok.encode(text, true);
        return new Prompt(ids, text);
    }
}
