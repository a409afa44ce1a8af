package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.tokenizer.Tokenizer;

import java.io.IOException;

/** A non-streamed response: waits for every choice, then builds one JSON object in vLLM's shape. */
final class CompletionResponse {
    private CompletionResponse() {}

    static ObjectNode collect(Generation g, Tokenizer tok) throws IOException {
        CompletionRequest job = g.job;
        Choice[] ch = g.choices;
        int left = ch.length;
        while (left > 0) {
            switch (g.take()) {
                case Generation.PromptLp p -> ch[p.idx()].prompt = p.p();
                case Generation.Tok t -> ch[t.idx()].add(t.e());
                case Generation.Done d -> { g.finish(d.idx(), d.r()); left--; }
                case Generation.Fail f -> throw ApiException.from(f.e());
            }
        }
        LogprobsJson lpJson = new LogprobsJson(tok);
        ObjectNode r = Json.MAPPER.createObjectNode();
        r.put("id", job.id());
        r.put("object", job.chat() ? "chat.completion" : "text_completion");
        r.put("created", job.created());
        r.put("model", job.model());
        ArrayNode choices = r.putArray("choices");
        for (int i = 0; i < ch.length; i++) {
            Choice c = ch[i];
            ObjectNode o = choices.addObject();
            o.put("index", i);
            Prompt p = job.prompt(i);
            if (job.chat()) {
                ObjectNode m = o.putObject("message");
                m.put("role", "assistant");
                if (c.tools == null) m.put("content", c.text.toString());
                else {
                    c.tools.finish(c.text.toString());
                    m.put("content", c.tools.content());
                    if (!c.tools.calls().isEmpty()) m.set("tool_calls", ToolCallJson.calls(c.tools.calls()));
                }
                if (job.logprobs() >= 0) o.set("logprobs", lpJson.chat(c.tokens, job.logprobs()));
                else o.putNull("logprobs");
            } else {
                String prefix = job.echo() ? p.echoText(tok) : "";
                o.put("text", prefix + c.text);
                if (job.logprobs() >= 0) o.set("logprobs", lpJson.completion(job.logprobs(), job.echo() ? p : null, c.prompt, c.tokens, c.offsets));
                else o.putNull("logprobs");
            }
            o.put("finish_reason", ToolPlan.finish(c));
            o.putNull("stop_reason");
        }
        r.set("usage", g.out.usage());
        return r;
    }
}
