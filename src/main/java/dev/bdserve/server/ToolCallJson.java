package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/** Tool calls in OpenAI's JSON shapes: a message's {@code tool_calls}, and a stream's delta {@code tool_calls}. */
final class ToolCallJson {
    private ToolCallJson() {}

    /** {@code [{"id", "type": "function", "function": {"name", "arguments"}}]}. */
    static ArrayNode calls(List<ToolCall> calls) {
        ArrayNode a = Json.MAPPER.createArrayNode();
        for (ToolCall c : calls) {
            ObjectNode o = a.addObject();
            o.put("id", c.id());
            o.put("type", "function");
            ObjectNode f = o.putObject("function");
            f.put("name", c.name());
            f.put("arguments", c.arguments());
        }
        return a;
    }

    /**
     * A call's deltas as OpenAI streams them: first its index, id, type, name and empty arguments, then its
     * arguments (sent whole: a call goes out once it is complete).
     */
    static List<ArrayNode> deltas(ToolCall c, int index) {
        ArrayNode head = Json.MAPPER.createArrayNode();
        ObjectNode h = head.addObject();
        h.put("index", index);
        h.put("id", c.id());
        h.put("type", "function");
        ObjectNode f = h.putObject("function");
        f.put("name", c.name());
        f.put("arguments", "");
        ArrayNode args = Json.MAPPER.createArrayNode();
        ObjectNode a = args.addObject();
        a.put("index", index);
        a.putObject("function").put("arguments", c.arguments());
        return List.of(head, args);
    }
}
