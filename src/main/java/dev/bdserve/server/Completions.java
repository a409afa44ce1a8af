package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;

/**
 * /v1/completions and /v1/chat/completions: parses a request into engine requests (one per prompt × n),
 * submits them, and turns their events into a JSON response or an SSE stream in vLLM's shapes.
 */
final class Completions {
    /** Where a response goes: a whole JSON body, or SSE events. Implemented by the HTTP layer. */
    interface Sink {
        /** Answers 200 with a whole JSON body. */
        void json(String body) throws IOException;

        /** Starts an SSE response (status 200). */
        void startStream() throws IOException;

        /** Writes and flushes one SSE event {@code data: <payload>\n\n}; IOException when the client is gone. */
        void event(String payload) throws IOException;

        /** True once the HTTP layer knows the client went away. */
        default boolean clientGone() { return false; }
    }

    /** What the access log and metrics want to know about a finished generation request. */
    static final class Outcome {
        String model, adapter, finish = "";
        int promptTokens, completionTokens, choices;
        double ttftSeconds = Double.NaN;
        boolean stream;

        /** The response's usage object. */
        ObjectNode usage() {
            ObjectNode u = Json.MAPPER.createObjectNode();
            u.put("prompt_tokens", promptTokens);
            u.put("total_tokens", promptTokens + completionTokens);
            u.put("completion_tokens", completionTokens);
            return u;
        }
    }

    private final ServingEngine engine;
    private final OpenAiServer.Options options;
    private final ServerMetrics metrics;
    private final StructuredOutputs structured = new StructuredOutputs(StructuredOutputs.DEFAULT_CACHE);

    Completions(ServingEngine engine, OpenAiServer.Options options, ServerMetrics metrics) {
        this.engine = engine;
        this.options = options;
        this.metrics = metrics;
    }

    Outcome handle(ObjectNode body, boolean chat, String id, Sink sink) throws IOException {
        Outcome out = new Outcome();
        CompletionRequest job = CompletionRequest.parse(body, chat, id, engine, options, structured);
        out.model = job.model();
        out.adapter = job.adapter();
        out.stream = job.stream();
        out.choices = job.choices();
        for (Prompt p : job.prompts()) out.promptTokens += p.ids().length;
        run(job, sink, out);
        return out;
    }

    private void run(CompletionRequest job, Sink sink, Outcome out) throws IOException {
        Generation g = Generation.submit(engine, job, sink, out, metrics);
        boolean completed = false;
        try {
            if (job.stream()) new CompletionStream(g, sink, engine.tokenizer()).write();
            else sink.json(Json.MAPPER.writeValueAsString(CompletionResponse.collect(g, engine.tokenizer())));
            completed = true;
        } finally {
            if (!completed) g.cancel();   // client gone, or an error: free the KV blocks
        }
    }
}
