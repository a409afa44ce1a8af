package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.PromptLogprobs;
import dev.bdserve.engine.TokenEvent;
import dev.bdserve.tokenizer.Tokenizer;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** A streamed response: an SSE chunk per token (per choice), a last chunk with finish_reason, usage if asked, [DONE]. */
final class CompletionStream {
    /** The engine failed a streamed request after the 200 went out: the error event has been sent. */
    static final class StreamFailed extends IOException {
        final ApiException error;
        StreamFailed(ApiException e) { super(e.getMessage()); this.error = e; }
    }

    private final Generation g;
    private final CompletionRequest job;
    private final Completions.Sink sink;
    private final Tokenizer tok;
    private final LogprobsJson lpJson;
    private final String object;
    private final List<TokenEvent>[] held;   // per choice: tokens whose logprobs are not sent yet (tool reading)

    CompletionStream(Generation g, Completions.Sink sink, Tokenizer tok) {
        this.g = g;
        this.job = g.job;
        this.sink = sink;
        this.tok = tok;
        this.lpJson = new LogprobsJson(tok);
        this.object = job.chat() ? "chat.completion.chunk" : "text_completion";
        @SuppressWarnings("unchecked") List<TokenEvent>[] h = new List[g.choices.length];
        for (int i = 0; i < h.length; i++) h[i] = new ArrayList<>();
        this.held = h;
    }

    void write() throws IOException {
        sink.startStream();
        Choice[] ch = g.choices;
        for (int i = 0; i < ch.length; i++) {
            if (job.chat()) {
                ObjectNode c = chunk();
                ObjectNode o = c.withArray("choices").addObject();
                o.put("index", i);
                ObjectNode d = o.putObject("delta");
                d.put("role", "assistant");
                d.put("content", "");
                o.putNull("logprobs");
                o.putNull("finish_reason");
                send(c);
            } else if (job.echo() && job.logprobs() < 0) {
                send(echoChunk(i, null));
            }                                                // with logprobs, the echo chunk waits for the prompt's logprobs
        }
        int left = ch.length;
        while (left > 0) {
            switch (g.take()) {
                case Generation.PromptLp p -> {
                    ch[p.idx()].prompt = p.p();
                    if (job.echo()) send(echoChunk(p.idx(), p.p()));
                }
                case Generation.Tok t -> {
                    Choice c = ch[t.idx()];
                    int offset = c.text.length();
                    c.add(t.e());
                    if (c.tools != null) {
                        held[t.idx()].add(t.e());
                        sendTools(t.idx(), c.tools.feed(c.text.toString()), null);
                        continue;
                    }
                    if (t.e().text().isEmpty() && job.logprobs() < 0) continue;
                    c.streamedChars = c.text.length();
                    send(delta(t.idx(), t.e().text(), List.of(t.e()), List.of(offset), null));
                }
                case Generation.Done d -> {
                    Choice c = ch[d.idx()];
                    g.finish(d.idx(), d.r());
                    if (c.tools != null) {
                        sendTools(d.idx(), c.tools.finish(c.text.toString()), ToolPlan.finish(c));
                        left--;
                        continue;
                    }
                    // text the engine held back (e.g. a possible stop string that was not one) goes out with the last chunk
                    String rest = c.text.length() > c.streamedChars ? c.text.substring(c.streamedChars) : "";
                    c.streamedChars = c.text.length();
                    send(delta(d.idx(), rest, List.of(), List.of(), c.finish));
                    left--;
                }
                case Generation.Fail f -> {
                    ApiException e = ApiException.from(f.e());
                    send(e.body());
                    sink.event("[DONE]");
                    g.out.finish = "error";
                    throw new StreamFailed(e);
                }
            }
        }
        if (job.includeUsage()) {
            ObjectNode c = chunk();
            c.putArray("choices");
            c.set("usage", g.out.usage());
            send(c);
        }
        sink.event("[DONE]");
    }

    /**
     * A tool-reading choice's news: its new content, then each new call's deltas, and with {@code finish} a last
     * delta carrying it. Logprobs of tokens held back go with the next delta sent.
     */
    private void sendTools(int idx, ToolCallStreamer.Out out, String finish) throws IOException {
        if (!out.content().isEmpty()) send(toolDelta(idx, out.content(), null, null));
        for (int k = 0; k < out.calls().size(); k++)
            for (var d : ToolCallJson.deltas(out.calls().get(k), out.firstIndex() + k)) send(toolDelta(idx, null, d, null));
        if (finish != null) send(toolDelta(idx, null, null, finish));
    }

    private ObjectNode toolDelta(int idx, String content, com.fasterxml.jackson.databind.node.ArrayNode calls, String finish) {
        ObjectNode c = chunk();
        ObjectNode o = c.withArray("choices").addObject();
        o.put("index", idx);
        ObjectNode d = o.putObject("delta");
        if (content != null) d.put("content", content);
        if (calls != null) d.set("tool_calls", calls);
        if (job.logprobs() >= 0 && !held[idx].isEmpty()) {
            o.set("logprobs", lpJson.chat(held[idx], job.logprobs()));
            held[idx] = new ArrayList<>();
        } else o.putNull("logprobs");
        if (finish == null) o.putNull("finish_reason"); else o.put("finish_reason", finish);
        o.putNull("stop_reason");
        return c;
    }

    private void send(ObjectNode payload) throws IOException { sink.event(Json.MAPPER.writeValueAsString(payload)); }

    /** A streamed completion's first chunk under echo: the prompt's text, and its logprobs when asked for. */
    private ObjectNode echoChunk(int idx, PromptLogprobs prompt) {
        ObjectNode c = chunk();
        ObjectNode o = c.withArray("choices").addObject();
        o.put("index", idx);
        Prompt p = job.prompt(idx);
        o.put("text", p.echoText(tok));
        if (job.logprobs() >= 0) o.set("logprobs", lpJson.completion(job.logprobs(), p, prompt, List.of(), List.of()));
        else o.putNull("logprobs");
        o.putNull("finish_reason");
        return c;
    }

    private ObjectNode chunk() {
        ObjectNode c = Json.MAPPER.createObjectNode();
        c.put("id", job.id());
        c.put("object", object);
        c.put("created", job.created());
        c.put("model", job.model());
        return c;
    }

    private ObjectNode delta(int idx, String text, List<TokenEvent> toks, List<Integer> offsets, String finish) {
        ObjectNode c = chunk();
        ObjectNode o = c.withArray("choices").addObject();
        o.put("index", idx);
        if (job.chat()) {
            ObjectNode d = o.putObject("delta");
            if (!text.isEmpty() || finish == null) d.put("content", text);
            if (job.logprobs() >= 0 && !toks.isEmpty()) o.set("logprobs", lpJson.chat(toks, job.logprobs()));
            else o.putNull("logprobs");
        } else {
            o.put("text", text);
            if (job.logprobs() >= 0 && !toks.isEmpty()) {
                int base = job.echo() ? job.prompt(idx).echoText(tok).length() : 0;
                List<Integer> shifted = offsets.stream().map(x -> x + base).toList();
                o.set("logprobs", lpJson.completion(job.logprobs(), null, null, toks, shifted));
            } else o.putNull("logprobs");
        }
        if (finish == null) o.putNull("finish_reason"); else o.put("finish_reason", finish);
        o.putNull("stop_reason");
        return c;
    }
}
