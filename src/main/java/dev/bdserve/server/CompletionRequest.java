package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.structured.Constraint;

import java.util.ArrayList;
import java.util.List;

/**
 * A validated /v1/completions or /v1/chat/completions request: every parameter checked against the model and the
 * server's limits, with vLLM's messages for what it refuses.
 *
 * @param adapter   the adapter the model name names, or null for the base model
 * @param maxTokens tokens to generate at most, -1 for no limit but the context
 * @param logprobs  alternatives per token to return with logprobs, -1 for no logprobs
 * @param created   the response's creation time, seconds since the epoch
 * @param tools     how a chat's output is read for tool calls (and constrained to them), or null: plain text
 * @param constraint what every choice's output must match ({@link StructuredOutputs}), or null for free text
 */
record CompletionRequest(String id, boolean chat, String model, String adapter, List<Prompt> prompts, int n, SamplingParams params,
                         int maxTokens, boolean stream, boolean includeUsage, boolean echo, int logprobs, long created,
                         ToolPlan tools, Constraint constraint) {

    /** The constraint the engine applies: the structured-output fields', else a forced tool call's, else null. */
    Constraint outputConstraint() { return constraint != null ? constraint : tools == null ? null : tools.constraint(); }

    /** The number of choices: n per prompt. */
    int choices() { return prompts.size() * n; }

    /** The prompt that choice {@code idx} continues. */
    Prompt prompt(int idx) { return prompts.get(idx / n); }

    static CompletionRequest parse(ObjectNode b, boolean chat, String id, ServingEngine engine, OpenAiServer.Options options,
                                   StructuredOutputs structured) {
        String model = Params.optString(b, "model");
        if (model == null) model = options.servedModelName();
        String adapter = resolveModel(model, engine, options);

        Prompts reader = new Prompts(engine.tokenizer(), options);
        List<Prompt> prompts = new ArrayList<>();
        ToolPlan tools = chat ? ToolPlan.of(b, options.chatTemplate()) : null;
        if (chat) prompts.add(reader.chat(b));
        else prompts.addAll(reader.completion(b));
        int n = orDefault(Params.optInt(b, "n", 1, options.maxChoices()), 1);
        Integer bestOf = Params.optInt(b, "best_of", 1, options.maxChoices());
        if (bestOf != null && bestOf != n) throw ApiException.badParam("best_of", "best_of other than n is not supported");
        if (prompts.size() * (long) n > options.maxChoices())
            throw ApiException.badRequest("A request may produce at most " + options.maxChoices() + " choices (prompts × n), got " + prompts.size() * (long) n + ".");

        boolean echo = !chat && Params.optBool(b, "echo", false);
        // echo with max_tokens 0 returns the prompt (and its logprobs) only, as vLLM does
        Integer maxTokens = Params.optInt(b, "max_tokens", echo ? 0 : 1, Integer.MAX_VALUE);
        if (chat) {
            Integer mct = Params.optInt(b, "max_completion_tokens", 1, Integer.MAX_VALUE);
            if (mct != null) maxTokens = mct;
        }
        checkLengths(prompts, maxTokens, engine);

        double temperature = orDefault(Params.optDouble(b, "temperature", 0, 100), 1.0);
        double topP = orDefault(Params.optDouble(b, "top_p", Double.MIN_VALUE, 1), 1.0);
        Integer topKv = Params.optInt(b, "top_k", -1, Integer.MAX_VALUE);
        int topK = topKv == null || topKv <= 0 ? 0 : topKv;
        double minP = orDefault(Params.optDouble(b, "min_p", 0, 1), 0.0);
        Long seed = Params.optLong(b, "seed");
        List<String> stop = Params.stop(b);
        boolean ignoreEos = Params.optBool(b, "ignore_eos", false);
        double presence = orDefault(Params.optDouble(b, "presence_penalty", -2, 2), 0.0);
        double frequency = orDefault(Params.optDouble(b, "frequency_penalty", -2, 2), 0.0);
        int logprobs = -1;
        if (chat) {
            boolean lp = Params.optBool(b, "logprobs", false);
            Integer top = Params.optInt(b, "top_logprobs", 0, 20);
            if (top != null && top > 0 && !lp) throw ApiException.badParam("top_logprobs", "when using `top_logprobs`, `logprobs` must be set to true.");
            if (lp) logprobs = top == null ? 0 : top;
        } else {
            Integer lp = Params.optInt(b, "logprobs", 0, 20);
            if (lp != null) logprobs = lp;
        }
        boolean stream = Params.optBool(b, "stream", false);
        JsonNode so = Params.field(b, "stream_options");
        boolean includeUsage = false;
        if (so != null) {
            if (!so.isObject()) throw ApiException.badParam("stream_options", "stream_options: expected an object, got " + Params.describe(so));
            if (!stream) throw ApiException.badParam("stream_options", "Stream options can only be defined when `stream=True`.");
            includeUsage = Params.optBool((ObjectNode) so, "include_usage", false);
        }
        Constraint constraint = structured.parse(b);
        if (constraint != null && tools != null && tools.constraint() != null)
            throw ApiException.badParam("tool_choice", "tool_choice `required` or a named function constrains the output to a tool call; "
                    + "it cannot be combined with response_format or structured outputs");
        SamplingParams params;
        try {
            // echoed prompt tokens carry their logprobs: the engine computes them only when asked
            params = new SamplingParams(temperature, topK, topP, minP, seed, stop, ignoreEos, presence, frequency, logprobs,
                    echo && logprobs >= 0 ? logprobs : -1);
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(e.getMessage());
        }
        return new CompletionRequest(id, chat, model, adapter, prompts, n, params, maxTokens == null ? -1 : maxTokens, stream,
                includeUsage, echo, logprobs, System.currentTimeMillis() / 1000, tools, constraint);
    }

    /** null for the base model, else the adapter's name; 404 for anything else. */
    private static String resolveModel(String model, ServingEngine engine, OpenAiServer.Options options) {
        if (model.equals(options.servedModelName())) return null;
        for (var a : engine.adapters()) if (a.name().equals(model)) return model;
        throw ApiException.unknownModel(model);
    }

    /** Every prompt non-empty, in the vocabulary, and with max_tokens within the model's context. */
    private static void checkLengths(List<Prompt> prompts, Integer maxTokens, ServingEngine engine) {
        int ctx = engine.modelConfig().maxPositions();
        int vocab = engine.modelConfig().vocabSize();
        for (Prompt p : prompts) {
            if (p.ids().length == 0) throw ApiException.badParam("prompt", "The prompt cannot be empty.");
            for (int t : p.ids())
                if (t < 0 || t >= vocab) throw ApiException.badParam("prompt", "Token id " + t + " is out of vocabulary (size " + vocab + ").");
            if (maxTokens != null && (long) p.ids().length + maxTokens > ctx)
                throw ApiException.badRequest("This model's maximum context length is " + ctx + " tokens. However, you requested "
                        + ((long) p.ids().length + maxTokens) + " tokens (" + p.ids().length + " in the messages, " + maxTokens
                        + " in the completion). Please reduce the length of the messages or completion.");
            if (p.ids().length >= ctx)
                throw ApiException.badRequest("This model's maximum context length is " + ctx + " tokens. However, your request has "
                        + p.ids().length + " input tokens. Please reduce the length of the input messages.");
        }
    }

    private static <T> T orDefault(T v, T d) { return v == null ? d : v; }
}
