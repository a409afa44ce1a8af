package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.EngineException;
import dev.bdserve.engine.EngineRequest;
import dev.bdserve.engine.PromptLogprobs;
import dev.bdserve.engine.RequestHandle;
import dev.bdserve.engine.RequestListener;
import dev.bdserve.engine.RequestResult;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TokenEvent;
import dev.bdserve.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * /v1/completions and /v1/chat/completions: parses a request into engine requests (one per prompt × n),
 * submits them, and turns their events into a JSON response or an SSE stream in vLLM's shapes.
 */
final class Completions {
    static final ObjectMapper JSON = new ObjectMapper().enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

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
    }

    private final ServingEngine engine;
    private final OpenAiServer.Options options;
    private final ServerMetrics metrics;

    Completions(ServingEngine engine, OpenAiServer.Options options, ServerMetrics metrics) {
        this.engine = engine;
        this.options = options;
        this.metrics = metrics;
    }

    /** One prompt: ids and (for echo) its text. */
    private record Prompt(int[] ids, String text) {}

    /** A parsed request. */
    private record Job(String id, boolean chat, String model, String adapter, List<Prompt> prompts, int n, SamplingParams params,
                       int maxTokens, boolean stream, boolean includeUsage, boolean echo, int logprobs, long created) {}

    private sealed interface Ev permits PromptLp, Tok, Done, Fail {}
    private record PromptLp(int idx, PromptLogprobs p) implements Ev {}
    private record Tok(int idx, TokenEvent e) implements Ev {}
    private record Done(int idx, RequestResult r) implements Ev {}
    private record Fail(int idx, EngineException e) implements Ev {}

    /** Per-choice state. */
    private static final class Choice {
        final StringBuilder text = new StringBuilder();
        final List<TokenEvent> tokens = new ArrayList<>();
        final List<Integer> offsets = new ArrayList<>();
        PromptLogprobs prompt;     // echo with logprobs: the prompt's logprobs, once the engine computed them
        int streamedChars;         // text chars already sent
        int tokensOut;
        String finish;
        boolean done;
    }

    Outcome handle(ObjectNode body, boolean chat, String id, Sink sink) throws IOException {
        Outcome out = new Outcome();
        Job job = parse(body, chat, id);
        out.model = job.model;
        out.adapter = job.adapter;
        out.stream = job.stream;
        out.choices = job.prompts.size() * job.n;
        for (Prompt p : job.prompts) out.promptTokens += p.ids.length;
        run(job, sink, out);
        return out;
    }

    // ---------------------------------------------------------------- parsing

    private Job parse(ObjectNode b, boolean chat, String id) {
        String model = Params.optString(b, "model");
        if (model == null) model = options.servedModelName();
        String adapter = resolveModel(model);

        Tokenizer tok = engine.tokenizer();
        List<Prompt> prompts = new ArrayList<>();
        if (chat) {
            prompts.add(chatPrompt(b, tok));
        } else {
            if (Params.field(b, "suffix") != null) throw ApiException.badParam("suffix", "suffix is not currently supported");
            JsonNode p = Params.field(b, "prompt");
            if (p == null) throw ApiException.badParam("prompt", "prompt: this field is required");
            if (p.isTextual()) prompts.add(textPrompt(p.asText(), tok));
            else if (p.isArray()) {
                if (p.isEmpty()) throw ApiException.badParam("prompt", "prompt: the list must not be empty");
                if (p.get(0).isIntegralNumber()) prompts.add(new Prompt(tokenIds(p), null));
                else for (JsonNode e : p) {
                    if (e.isTextual()) prompts.add(textPrompt(e.asText(), tok));
                    else if (e.isArray()) prompts.add(new Prompt(tokenIds(e), null));
                    else throw ApiException.badParam("prompt", "prompt: expected a string, a list of strings, a list of token ids or a list of lists of token ids");
                }
            } else throw ApiException.badParam("prompt", "prompt: expected a string, a list of strings, a list of token ids or a list of lists of token ids");
        }
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
        int ctx = engine.modelConfig().maxPositions();
        int vocab = engine.modelConfig().vocabSize();
        for (Prompt p : prompts) {
            if (p.ids.length == 0) throw ApiException.badParam("prompt", "The prompt cannot be empty.");
            for (int t : p.ids)
                if (t < 0 || t >= vocab) throw ApiException.badParam("prompt", "Token id " + t + " is out of vocabulary (size " + vocab + ").");
            if (maxTokens != null && (long) p.ids.length + maxTokens > ctx)
                throw ApiException.badRequest("This model's maximum context length is " + ctx + " tokens. However, you requested "
                        + ((long) p.ids.length + maxTokens) + " tokens (" + p.ids.length + " in the messages, " + maxTokens
                        + " in the completion). Please reduce the length of the messages or completion.");
            if (p.ids.length >= ctx)
                throw ApiException.badRequest("This model's maximum context length is " + ctx + " tokens. However, your request has "
                        + p.ids.length + " input tokens. Please reduce the length of the input messages.");
        }

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
        SamplingParams params;
        try {
            // echoed prompt tokens carry their logprobs: the engine computes them only when asked
            params = new SamplingParams(temperature, topK, topP, minP, seed, stop, ignoreEos, presence, frequency, logprobs,
                    echo && logprobs >= 0 ? logprobs : -1);
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(e.getMessage());
        }
        return new Job(id, chat, model, adapter, prompts, n, params, maxTokens == null ? -1 : maxTokens, stream, includeUsage,
                echo, logprobs, System.currentTimeMillis() / 1000);
    }

    /** null for the base model, else the adapter's name; 404 for anything else. */
    String resolveModel(String model) {
        if (model.equals(options.servedModelName())) return null;
        for (var a : engine.adapters()) if (a.name().equals(model)) return model;
        throw ApiException.unknownModel(model);
    }

    private Prompt textPrompt(String s, Tokenizer tok) {
        if (s.length() > options.maxPromptChars())
            throw ApiException.badParam("prompt", "The prompt has " + s.length() + " characters; at most " + options.maxPromptChars() + " are accepted.");
        return new Prompt(tok.encode(s, true), s);
    }

    private int[] tokenIds(JsonNode arr) {
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

    private Prompt chatPrompt(ObjectNode b, Tokenizer tok) {
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

    private static <T> T orDefault(T v, T d) { return v == null ? d : v; }

    // ---------------------------------------------------------------- running

    private void run(Job job, Sink sink, Outcome out) throws IOException {
        int total = job.prompts.size() * job.n;
        LinkedBlockingQueue<Ev> q = new LinkedBlockingQueue<>();
        List<RequestHandle> handles = new ArrayList<>(total);
        Choice[] ch = new Choice[total];
        try {
            for (int p = 0; p < job.prompts.size(); p++)
                for (int i = 0; i < job.n; i++) {
                    int idx = p * job.n + i;
                    ch[idx] = new Choice();
                    SamplingParams sp = job.params.seed() == null || i == 0 ? job.params : job.params.withSeed(job.params.seed() + i);
                    EngineRequest er = new EngineRequest(total == 1 ? job.id : job.id + "-" + idx, job.prompts.get(p).ids, job.adapter, sp, job.maxTokens);
                    handles.add(engine.submit(er, new RequestListener() {
                        @Override public void onPromptLogprobs(PromptLogprobs p) { q.add(new PromptLp(idx, p)); }
                        @Override public void onToken(TokenEvent e) { q.add(new Tok(idx, e)); }
                        @Override public void onFinish(RequestResult r) { q.add(new Done(idx, r)); }
                        @Override public void onError(EngineException e) { q.add(new Fail(idx, e)); }
                    }));
                }
        } catch (EngineException e) {
            handles.forEach(RequestHandle::cancel);
            throw fromEngine(e);
        } catch (IllegalArgumentException e) {
            handles.forEach(RequestHandle::cancel);
            throw ApiException.badRequest(e.getMessage());
        }
        boolean completed = false;
        try {
            if (job.stream) stream(job, sink, q, ch, out);
            else sink.json(JSON.writeValueAsString(collect(job, q, ch, out, sink)));
            completed = true;
        } finally {
            if (!completed) handles.forEach(RequestHandle::cancel);   // client gone, or an error: free the KV blocks
        }
    }

    static ApiException fromEngine(EngineException e) {
        return new ApiException(e.status(), ApiException.typeOf(e.status()), e.getMessage(), null);
    }

    /**
     * The next event; IOException as soon as the client is known to be gone (the caller cancels): checked before
     * every event, since a request producing tokens steadily never leaves the queue empty, and every 100 ms without.
     */
    private Ev take(LinkedBlockingQueue<Ev> q, Sink sink) throws IOException {
        try {
            while (true) {
                if (sink.clientGone()) throw new IOException("the client went away");
                Ev ev = q.poll(100, TimeUnit.MILLISECONDS);
                if (ev != null) return ev;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        }
    }

    /** Non-streaming: waits for every choice and builds the response object. */
    private ObjectNode collect(Job job, LinkedBlockingQueue<Ev> q, Choice[] ch, Outcome out, Sink sink) throws IOException {
        int left = ch.length;
        while (left > 0) {
            Ev ev = take(q, sink);
            switch (ev) {
                case PromptLp p -> ch[p.idx].prompt = p.p;
                case Tok t -> addToken(ch[t.idx], t.e);
                case Done d -> { finish(ch[d.idx], d.r, job, out); left--; }
                case Fail f -> throw fromEngine(f.e);
            }
        }
        ObjectNode r = JSON.createObjectNode();
        r.put("id", job.id);
        r.put("object", job.chat ? "chat.completion" : "text_completion");
        r.put("created", job.created);
        r.put("model", job.model);
        ArrayNode choices = r.putArray("choices");
        for (int i = 0; i < ch.length; i++) {
            Choice c = ch[i];
            ObjectNode o = choices.addObject();
            o.put("index", i);
            Prompt p = job.prompts.get(i / job.n);
            if (job.chat) {
                ObjectNode m = o.putObject("message");
                m.put("role", "assistant");
                m.put("content", c.text.toString());
                if (job.logprobs >= 0) o.set("logprobs", chatLogprobs(c.tokens, job.logprobs));
                else o.putNull("logprobs");
            } else {
                String prefix = job.echo ? promptText(p) : "";
                o.put("text", prefix + c.text);
                if (job.logprobs >= 0) o.set("logprobs", completionLogprobs(job, job.echo ? p : null, c.prompt, c.tokens, c.offsets));
                else o.putNull("logprobs");
            }
            o.put("finish_reason", c.finish);
            o.putNull("stop_reason");
        }
        r.set("usage", usage(out));
        return r;
    }

    private void addToken(Choice c, TokenEvent e) {
        c.offsets.add(c.text.length());
        c.text.append(e.text());
        c.tokens.add(e);
        c.tokensOut++;
    }

    /** Records the end of a choice; the result's text is authoritative (held-back text included). */
    private void finish(Choice c, RequestResult r, Job job, Outcome out) {
        String all = r.text();
        if (all != null && !all.contentEquals(c.text)) { c.text.setLength(0); c.text.append(all); }
        c.finish = r.finishReason();
        c.done = true;
        int produced = r.tokens() != null ? r.tokens().length : c.tokensOut;
        out.completionTokens += produced;
        out.finish = out.finish.isEmpty() ? c.finish : out.finish.contains(c.finish) ? out.finish : out.finish + "," + c.finish;
        if (r.metrics() != null) {
            double t = r.metrics().ttftSeconds();
            if (t > 0 && (Double.isNaN(out.ttftSeconds) || t < out.ttftSeconds)) out.ttftSeconds = t;
            metrics.observe(job.adapter, r.finishReason(), r.metrics());
        }
    }

    private String promptText(Prompt p) { return p.text != null ? p.text : engine.tokenizer().decode(p.ids); }

    private ObjectNode usage(Outcome out) {
        ObjectNode u = JSON.createObjectNode();
        u.put("prompt_tokens", out.promptTokens);
        u.put("total_tokens", out.promptTokens + out.completionTokens);
        u.put("completion_tokens", out.completionTokens);
        return u;
    }

    /** Streaming: an SSE chunk per token (per choice), a last chunk with finish_reason, usage if asked, [DONE]. */
    private void stream(Job job, Sink sink, LinkedBlockingQueue<Ev> q, Choice[] ch, Outcome out) throws IOException {
        sink.startStream();
        String object = job.chat ? "chat.completion.chunk" : "text_completion";
        for (int i = 0; i < ch.length; i++) {
            if (job.chat) {
                ObjectNode c = chunk(job, object);
                ObjectNode o = c.withArray("choices").addObject();
                o.put("index", i);
                ObjectNode d = o.putObject("delta");
                d.put("role", "assistant");
                d.put("content", "");
                o.putNull("logprobs");
                o.putNull("finish_reason");
                sink.event(JSON.writeValueAsString(c));
            } else if (job.echo && job.logprobs < 0) {
                sink.event(JSON.writeValueAsString(echoChunk(job, object, i, null)));
            }                                                // with logprobs, the echo chunk waits for the prompt's logprobs
        }
        int left = ch.length;
        while (left > 0) {
            Ev ev = take(q, sink);
            switch (ev) {
                case PromptLp p -> {
                    ch[p.idx].prompt = p.p;
                    if (job.echo) sink.event(JSON.writeValueAsString(echoChunk(job, object, p.idx, p.p)));
                }
                case Tok t -> {
                    Choice c = ch[t.idx];
                    int offset = c.text.length();
                    addToken(c, t.e);
                    if (t.e.text().isEmpty() && job.logprobs < 0) continue;
                    c.streamedChars = c.text.length();
                    sink.event(JSON.writeValueAsString(delta(job, object, t.idx, t.e.text(), List.of(t.e), List.of(offset), null)));
                }
                case Done d -> {
                    Choice c = ch[d.idx];
                    finish(c, d.r, job, out);
                    // text the engine held back (e.g. a possible stop string that was not one) goes out with the last chunk
                    String rest = c.text.length() > c.streamedChars ? c.text.substring(c.streamedChars) : "";
                    c.streamedChars = c.text.length();
                    sink.event(JSON.writeValueAsString(delta(job, object, d.idx, rest, List.of(), List.of(), c.finish)));
                    left--;
                }
                case Fail f -> {
                    ApiException e = fromEngine(f.e);
                    sink.event(JSON.writeValueAsString(OpenAiServer.errorBody(e.status(), e.type(), e.getMessage(), null)));
                    sink.event("[DONE]");
                    out.finish = "error";
                    throw new StreamFailed(e);
                }
            }
        }
        if (job.includeUsage) {
            ObjectNode c = chunk(job, object);
            c.putArray("choices");
            c.set("usage", usage(out));
            sink.event(JSON.writeValueAsString(c));
        }
        sink.event("[DONE]");
    }

    /** A streamed completion's first chunk under echo: the prompt's text, and its logprobs when asked for. */
    private ObjectNode echoChunk(Job job, String object, int idx, PromptLogprobs prompt) {
        ObjectNode c = chunk(job, object);
        ObjectNode o = c.withArray("choices").addObject();
        o.put("index", idx);
        Prompt p = job.prompts.get(idx / job.n);
        o.put("text", promptText(p));
        if (job.logprobs >= 0) o.set("logprobs", completionLogprobs(job, p, prompt, List.of(), List.of()));
        else o.putNull("logprobs");
        o.putNull("finish_reason");
        return c;
    }

    /** The engine failed a streamed request after the 200 went out: the error event has been sent. */
    static final class StreamFailed extends IOException {
        final ApiException error;
        StreamFailed(ApiException e) { super(e.getMessage()); this.error = e; }
    }

    private ObjectNode chunk(Job job, String object) {
        ObjectNode c = JSON.createObjectNode();
        c.put("id", job.id);
        c.put("object", object);
        c.put("created", job.created);
        c.put("model", job.model);
        return c;
    }

    private ObjectNode delta(Job job, String object, int idx, String text, List<TokenEvent> toks, List<Integer> offsets, String finish) {
        ObjectNode c = chunk(job, object);
        ObjectNode o = c.withArray("choices").addObject();
        o.put("index", idx);
        if (job.chat) {
            ObjectNode d = o.putObject("delta");
            if (!text.isEmpty() || finish == null) d.put("content", text);
            if (job.logprobs >= 0 && !toks.isEmpty()) o.set("logprobs", chatLogprobs(toks, job.logprobs));
            else o.putNull("logprobs");
        } else {
            o.put("text", text);
            if (job.logprobs >= 0 && !toks.isEmpty()) {
                int base = job.echo ? promptText(job.prompts.get(idx / job.n)).length() : 0;
                List<Integer> shifted = offsets.stream().map(x -> x + base).toList();
                o.set("logprobs", completionLogprobs(job, null, null, toks, shifted));
            } else o.putNull("logprobs");
        }
        if (finish == null) o.putNull("finish_reason"); else o.put("finish_reason", finish);
        o.putNull("stop_reason");
        return c;
    }

    // ---------------------------------------------------------------- logprobs

    private String tokenText(int id) { return engine.tokenizer().decode(new int[]{id}); }

    private static double lp(float v) { return Float.isNaN(v) ? -9999.0 : Math.max(-9999.0, v); }

    /**
     * Completions' shape: tokens, token_logprobs, top_logprobs, text_offset; with {@code echoed} (echo) the prompt's
     * tokens come first, as vLLM answers them: the first with null logprob and alternatives, every later one with
     * log p(token | the tokens before it) and a dict of the {@code logprobs} most likely tokens plus itself.
     * text_offset is each token's offset in the choice's text (the prompt's pieces as the tokenizer decodes them in
     * sequence); generated tokens' {@code offsets} are relative to the generated text.
     */
    private ObjectNode completionLogprobs(Job job, Prompt echoed, PromptLogprobs promptLp, List<TokenEvent> toks, List<Integer> offsets) {
        ObjectNode o = JSON.createObjectNode();
        ArrayNode tokens = o.putArray("tokens"), tlp = o.putArray("token_logprobs"), top = o.putArray("top_logprobs"), off = o.putArray("text_offset");
        int base = 0;
        if (echoed != null) {
            base = promptText(echoed).length();
            Tokenizer.StreamDecoder pieces = engine.tokenizer().newStreamDecoder();
            int at = 0;                                              // chars of the prompt text before token i
            for (int i = 0; i < echoed.ids.length; i++) {
                int id = echoed.ids[i];
                String s = tokenText(id);
                tokens.add(s);
                off.add(Math.min(at, base));
                at += pieces.push(id).length();
                boolean known = promptLp != null && i > 0 && !Float.isNaN(promptLp.logprobs()[i]);
                if (!known) {
                    tlp.addNull();
                    top.addNull();
                    continue;
                }
                tlp.add(lp(promptLp.logprobs()[i]));
                top.add(topDict(job.logprobs, s, promptLp.logprobs()[i], promptLp.top().get(i)));
            }
        }
        for (int i = 0; i < toks.size(); i++) {
            TokenEvent e = toks.get(i);
            String s = tokenText(e.token());
            tokens.add(s);
            tlp.add(lp(e.logprob()));
            top.add(topDict(job.logprobs, s, e.logprob(), e.top()));
            off.add(base + offsets.get(i));
        }
        return o;
    }

    /** The k most likely tokens by text with their logprobs, plus the actual token (so at most k + 1 entries). */
    private ObjectNode topDict(int k, String actual, float actualLogprob, List<TokenEvent.TopLogprob> alternatives) {
        ObjectNode t = JSON.createObjectNode();
        for (TokenEvent.TopLogprob a : alternatives) if (t.size() < k) t.put(tokenText(a.token()), lp(a.logprob()));
        if (!t.has(actual)) t.put(actual, lp(actualLogprob));
        return t;
    }

    /** Chat's shape: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}. */
    private ObjectNode chatLogprobs(List<TokenEvent> toks, int top) {
        ObjectNode o = JSON.createObjectNode();
        ArrayNode content = o.putArray("content");
        for (TokenEvent e : toks) {
            ObjectNode t = content.addObject();
            String s = tokenText(e.token());
            t.put("token", s);
            t.put("logprob", lp(e.logprob()));
            bytes(t, s);
            ArrayNode alts = t.putArray("top_logprobs");
            for (TokenEvent.TopLogprob a : e.top()) {
                if (alts.size() >= top) break;
                ObjectNode x = alts.addObject();
                String as = tokenText(a.token());
                x.put("token", as);
                x.put("logprob", lp(a.logprob()));
                bytes(x, as);
            }
        }
        return o;
    }

    private static void bytes(ObjectNode o, String s) {
        ArrayNode b = o.putArray("bytes");
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) b.add(x & 0xff);
    }
}
