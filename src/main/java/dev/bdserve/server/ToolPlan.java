package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.structured.Constraint;

/**
 * How a chat request's output is read for tool calls: its validated tools and choice, the format's parser, and
 * for {@code tool_choice} "required" or a named function the constraint that makes the output such calls.
 *
 * @param constraint null unless the output is constrained
 */
record ToolPlan(ToolChoice choice, ToolCallParser parser, Constraint constraint) {
    /**
     * The plan of a chat body; null when its output is plain text: no tools, {@code tool_choice} "none" (the
     * template still gets the tools, as vLLM does), or "auto" when the template's tool-call format is unknown.
     */
    static ToolPlan of(ObjectNode body, ChatTemplate template) {
        ToolChoice tc = ToolChoice.parse(body);
        if (tc == null || !tc.parses()) return null;
        ToolCallParser parser = template.toolParser();
        if (parser == null) {
            if (!tc.constrained()) return null;
            throw ApiException.badParam("tool_choice", "tool_choice \"" + (tc.named() == null ? "required" : tc.named())
                    + "\" needs a tool-call format, and none is known for this model's chat template: start the server with "
                    + "--tool-call-parser llama3_json, hermes or mistral");
        }
        return new ToolPlan(tc, parser, tc.constrained() ? ToolCallGrammar.constraint(tc, parser) : null);
    }

    /** A fresh reader for one choice's output. */
    ToolCallStreamer streamer() { return new ToolCallStreamer(parser, constraint != null, choice.maxCalls()); }

    /** The finish reason to report: "tool_calls" for a choice that stopped after making calls. */
    static String finish(Choice c) {
        return c.tools != null && !c.tools.calls().isEmpty() && "stop".equals(c.finish) ? "tool_calls" : c.finish;
    }
}
