package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.OpenAIServiceException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/** The server driven by the official OpenAI Java client (and raw HTTP where the client has no method). */
class ServerApiTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String GREEDY_START = " Once upon a time, there was a little girl named Lily";

    @TempDir static Path tmp;
    static TestServer ts;
    static OpenAIClient client;

    @BeforeAll
    static void start() throws Exception {
        Path allowed = Files.createDirectories(tmp.resolve("allowed"));
        TestServer.synthAdapter(allowed.resolve("a1"), 1, 0);
        TestServer.synthAdapter(allowed.resolve("a2"), 2, 0);
        TestServer.synthAdapter(tmp.resolve("outside"), 3, 0);
        ts = new TestServer(1, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(allowed)));
        ts.engine.registerAdapter("static", allowed.resolve("a1"), false);
        client = ts.client();
    }

    @AfterAll
    static void stop() { if (ts != null) ts.close(); }

    static CompletionCreateParams.Builder greedy(String model, String prompt, long max) {
        return CompletionCreateParams.builder().model(model).prompt(prompt).maxTokens(max).temperature(0);
    }

    @Test
    void completionIsTheGreedyStory() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model(TestServer.MODEL)
                .prompt("").maxTokens(30).temperature(0).build());
        CompletionChoice ch = c.choices().get(0);
        assertTrue(ch.text().startsWith(GREEDY_START), ch.text());
        assertEquals(CompletionChoice.FinishReason.LENGTH, ch.finishReason());
        assertEquals(30, c.usage().orElseThrow().completionTokens());
        assertEquals(1, c.usage().orElseThrow().promptTokens());   // BOS only
        assertEquals(31, c.usage().orElseThrow().totalTokens());
    }

    @Test
    void finishReasonStopOnAStopStringAndLengthAtTheContextLimit() {
        // without max_tokens a request runs up to the context limit (this model's greedy story never emits EOS)
        Completion c = client.completions().create(CompletionCreateParams.builder().model(TestServer.MODEL).prompt("Once upon a time").temperature(0).build());
        assertEquals(CompletionChoice.FinishReason.LENGTH, c.choices().get(0).finishReason());
        assertEquals(512, c.usage().orElseThrow().totalTokens());
        Completion s = client.completions().create(greedy(TestServer.MODEL, "Once upon a time", 100).stop(" Lily").build());
        assertEquals(", there was a little girl named", s.choices().get(0).text());
        assertEquals(CompletionChoice.FinishReason.STOP, s.choices().get(0).finishReason());
    }

    @Test
    void streamedTextEqualsNonStreamed() {
        String whole = client.completions().create(greedy(TestServer.MODEL, "Once upon a time", 60).build()).choices().get(0).text();
        CompletionCreateParams p = greedy(TestServer.MODEL, "Once upon a time", 60)
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        StringBuilder sb = new StringBuilder();
        long[] usage = {-1};
        String[] finish = {null};
        try (StreamResponse<Completion> s = client.completions().createStreaming(p)) {
            s.stream().forEach(chunk -> {
                for (CompletionChoice ch : chunk.choices()) {
                    sb.append(ch.text());
                    ch._finishReason().asKnown().ifPresent(f -> finish[0] = f.toString());
                }
                chunk.usage().ifPresent(u -> usage[0] = u.completionTokens());
            });
        }
        assertEquals(whole, sb.toString());
        assertEquals("length", finish[0]);
        assertEquals(60, usage[0]);
    }

    @Test
    void chatCompletionAndStreamingChat() {
        ChatCompletionCreateParams p = ChatCompletionCreateParams.builder().model(TestServer.MODEL)
                .addUserMessage("Tell me a story").maxCompletionTokens(25).temperature(0).build();
        ChatCompletion c = client.chat().completions().create(p);
        String text = c.choices().get(0).message().content().orElseThrow();
        assertFalse(text.isEmpty());
        assertEquals(25, c.usage().orElseThrow().completionTokens());
        // the plain template: "user: Tell me a story\nassistant: " after BOS
        int[] ids = ts.engine.tokenizer().encode("user: Tell me a story\nassistant: ", true);
        assertEquals(ids.length, c.usage().orElseThrow().promptTokens());
        StringBuilder sb = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(p)) {
            s.stream().forEach(ch -> ch.choices().forEach(x -> x.delta().content().ifPresent(sb::append)));
        }
        assertEquals(text, sb.toString());
    }

    @Test
    void adapterChangesTheTextAndStreamsTheSame() {
        String base = client.completions().create(greedy(TestServer.MODEL, "Once upon a time", 40).build()).choices().get(0).text();
        CompletionCreateParams p = greedy("static", "Once upon a time", 40).build();
        String lora = client.completions().create(p).choices().get(0).text();
        assertNotEquals(base, lora, "the adapter must change the output");
        StringBuilder sb = new StringBuilder();
        try (StreamResponse<Completion> s = client.completions().createStreaming(p)) {
            s.stream().forEach(ch -> ch.choices().forEach(x -> sb.append(x.text())));
        }
        assertEquals(lora, sb.toString());
    }

    @Test
    void listOfPromptsTimesN() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model(TestServer.MODEL)
                .promptOfArrayOfStrings(List.of("Once upon a time", "The cat")).n(2).maxTokens(10).temperature(0).build());
        assertEquals(4, c.choices().size());
        assertEquals(List.of(0L, 1L, 2L, 3L), c.choices().stream().map(CompletionChoice::index).toList());
        assertEquals(c.choices().get(0).text(), c.choices().get(1).text());
        assertEquals(c.choices().get(2).text(), c.choices().get(3).text());
        assertNotEquals(c.choices().get(0).text(), c.choices().get(2).text());
        assertEquals(40, c.usage().orElseThrow().completionTokens());
    }

    @Test
    void tokenIdPromptsEchoAndLogprobs() {
        int[] ids = ts.engine.tokenizer().encode("Once upon a time", true);
        List<Long> l = java.util.Arrays.stream(ids).mapToObj(i -> (long) i).toList();
        Completion byIds = client.completions().create(CompletionCreateParams.builder().model(TestServer.MODEL)
                .promptOfArrayOfTokens(l).maxTokens(12).temperature(0).build());
        Completion byText = client.completions().create(greedy(TestServer.MODEL, "Once upon a time", 12).build());
        assertEquals(byText.choices().get(0).text(), byIds.choices().get(0).text());
        Completion two = client.completions().create(CompletionCreateParams.builder().model(TestServer.MODEL)
                .promptOfArrayOfTokenArrays(List.of(l, l)).maxTokens(5).temperature(0).build());
        assertEquals(2, two.choices().size());

        Completion e = client.completions().create(greedy(TestServer.MODEL, "Once upon a time", 8).echo(true).logprobs(3).build());
        CompletionChoice ch = e.choices().get(0);
        assertTrue(ch.text().startsWith("Once upon a time,"), ch.text());
        var lp = ch.logprobs().orElseThrow();
        int n = lp.tokens().orElseThrow().size();
        assertEquals(ids.length + 8, n);
        List<Double> tlp = lp.tokenLogprobs().orElseThrow();
        assertEquals(n, tlp.size());
        for (int i = ids.length; i < n; i++) assertTrue(tlp.get(i) <= 0, "logprob " + tlp.get(i));
        assertEquals(n, lp.textOffset().orElseThrow().size());
    }

    @Test
    void echoWithLogprobsReturnsThePromptsLogprobs() throws Exception {
        String prompt = "Once upon a time";
        int[] ids = ts.engine.tokenizer().encode(prompt, true);          // BOS, " Once", " upon", " a", " time"
        int P = ids.length;
        HttpResponse<String> r = ts.post("/v1/completions", """
                {"prompt":"Once upon a time","echo":true,"logprobs":2,"max_tokens":3,"temperature":0}""");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode ch = JSON.readTree(r.body()).at("/choices/0");
        String text = ch.get("text").asText();
        assertTrue(text.startsWith(prompt + ","), text);
        JsonNode lp = ch.get("logprobs"), tokens = lp.get("tokens"), tlp = lp.get("token_logprobs"), top = lp.get("top_logprobs"),
                off = lp.get("text_offset");
        assertEquals(P + 3, tokens.size());
        assertEquals(P + 3, tlp.size());
        assertEquals(P + 3, top.size());
        assertEquals(P + 3, off.size());
        // vLLM's convention: the first prompt token has none; every later token log p(token | the tokens before it)
        assertTrue(tlp.get(0).isNull(), tlp.toString());
        assertTrue(top.get(0).isNull(), top.toString());
        for (int i = 1; i < P + 3; i++) {
            assertTrue(tlp.get(i).isNumber() && tlp.get(i).asDouble() <= 0 && tlp.get(i).asDouble() > -50, "token " + i + ": " + tlp.get(i));
            JsonNode d = top.get(i);
            assertTrue(d.isObject() && d.size() >= 1 && d.size() <= 3, "token " + i + ": " + d);
            assertTrue(d.has(tokens.get(i).asText()), "token " + i + " is among its top_logprobs: " + d);
            assertEquals(tlp.get(i).asDouble(), d.get(tokens.get(i).asText()).asDouble(), 1e-9);
            for (var e : d.properties()) assertTrue(e.getValue().asDouble() <= 0);
        }
        // a story's opening is likely: " upon" after " Once", " time" after " a"
        assertTrue(tlp.get(2).asDouble() > Math.log(0.5), tlp.toString());
        assertTrue(tlp.get(4).asDouble() > Math.log(0.5), tlp.toString());
        // text_offset: each token's place in the text; the prompt's first word has no leading space in the text
        List<Integer> offsets = new java.util.ArrayList<>();
        off.forEach(x -> offsets.add(x.asInt()));
        assertEquals(List.of(0, 0, 4, 9, 11, prompt.length()), offsets.subList(0, P + 1));
        for (int i = 0; i < P + 3; i++) {
            if (i > 0) assertTrue(offsets.get(i) >= offsets.get(i - 1), "text_offset is non-decreasing: " + offsets);
            String t = tokens.get(i).asText();       // a word's leading space is absent at the start of the text only
            assertTrue(text.startsWith(t, offsets.get(i)) || offsets.get(i) == 0 && text.startsWith(t.stripLeading()),
                    "token " + i + " '" + t + "' at " + offsets.get(i) + " in " + text);
        }
        // the same number as the logprob the engine reports when it samples that token after the same prefix
        HttpResponse<String> g = ts.post("/v1/completions", "{\"prompt\":[" + ids[0] + "," + ids[1] + "," + ids[2] + "," + ids[3]
                + "],\"logprobs\":5,\"max_tokens\":1,\"temperature\":0}");
        JsonNode gl = JSON.readTree(g.body()).at("/choices/0/logprobs");
        assertEquals(tokens.get(4).asText(), gl.at("/tokens/0").asText(), "greedy continues with the prompt's next token");
        assertEquals(gl.at("/token_logprobs/0").asDouble(), tlp.get(4).asDouble(), 1e-4);

        // echo with max_tokens 0: the prompt and its logprobs only
        HttpResponse<String> z = ts.post("/v1/completions", """
                {"prompt":"Once upon a time","echo":true,"logprobs":1,"max_tokens":0}""");
        assertEquals(200, z.statusCode(), z.body());
        JsonNode zr = JSON.readTree(z.body());
        assertEquals(prompt, zr.at("/choices/0/text").asText());
        assertEquals("length", zr.at("/choices/0/finish_reason").asText());
        assertEquals(0, zr.at("/usage/completion_tokens").asInt());
        assertEquals(P, zr.at("/usage/prompt_tokens").asInt());
        JsonNode ztlp = zr.at("/choices/0/logprobs/token_logprobs");
        assertEquals(P, ztlp.size());
        assertTrue(ztlp.get(0).isNull());
        for (int i = 1; i < P; i++) {
            assertEquals(tlp.get(i).asDouble(), ztlp.get(i).asDouble(), 1e-5, "prompt token " + i);
            assertTrue(zr.at("/choices/0/logprobs/top_logprobs").get(i).size() <= 2);
        }
        // without echo, max_tokens must still be ≥ 1
        assertError(ts.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":0}"), 400, "max_tokens must be between 1 and");

        // streamed: the first chunk is the prompt with its logprobs
        HttpResponse<String> st = ts.post("/v1/completions", """
                {"prompt":"Once upon a time","echo":true,"logprobs":2,"max_tokens":3,"temperature":0,"stream":true}""");
        JsonNode first = JSON.readTree(st.body().lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow().substring(6));
        assertEquals(prompt, first.at("/choices/0/text").asText());
        JsonNode stlp = first.at("/choices/0/logprobs/token_logprobs");
        assertEquals(P, stlp.size());
        assertTrue(stlp.get(0).isNull());
        for (int i = 1; i < P; i++) assertEquals(tlp.get(i).asDouble(), stlp.get(i).asDouble(), 1e-5);
        assertTrue(st.body().endsWith("data: [DONE]\n\n"), st.body());
    }

    @Test
    void chatLogprobsAndSeededSampling() throws Exception {
        HttpResponse<String> r = ts.post("/v1/chat/completions", """
                {"model":"stories260K","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"logprobs":true,"top_logprobs":2,"temperature":0}""");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode content = JSON.readTree(r.body()).at("/choices/0/logprobs/content");
        assertEquals(5, content.size());
        assertEquals(2, content.get(0).get("top_logprobs").size());
        String body = """
                {"model":"stories260K","prompt":"Once","max_tokens":20,"temperature":1.0,"top_p":0.9,"top_k":40,"min_p":0.01,
                 "seed":42,"presence_penalty":0.5,"frequency_penalty":0.5}""";
        String a = JSON.readTree(ts.post("/v1/completions", body).body()).at("/choices/0/text").asText();
        String b = JSON.readTree(ts.post("/v1/completions", body).body()).at("/choices/0/text").asText();
        assertEquals(a, b, "the same seed gives the same text");
    }

    @Test
    void modelsListsBaseAndAdaptersWithParent() {
        List<Model> models = client.models().list().data();
        assertEquals(TestServer.MODEL, models.get(0).id());
        assertTrue(models.stream().anyMatch(m -> m.id().equals("static")));
        try {
            JsonNode data = JSON.readTree(ts.get("/v1/models").body()).get("data");
            JsonNode st = null;
            for (JsonNode m : data) if (m.get("id").asText().equals("static")) st = m;
            assertNotNull(st);
            assertEquals(TestServer.MODEL, st.get("parent").asText());
            assertEquals("static", st.get("root").asText(), "no server path without --show-model-paths");
            assertEquals(TestServer.MODEL, data.get(0).get("root").asText());
            assertTrue(data.get(0).get("parent").isNull());
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void loadUseAndUnloadAnAdapter() throws Exception {
        Path a2 = tmp.resolve("allowed/a2");
        HttpResponse<String> r = ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"dyn\",\"lora_path\":\"" + a2 + "\"}");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("Success: LoRA adapter 'dyn' added successfully.", r.body());
        assertTrue(client.models().list().data().stream().anyMatch(m -> m.id().equals("dyn")));
        Completion c = client.completions().create(greedy("dyn", "Once upon a time", 10).build());
        assertEquals(10, c.usage().orElseThrow().completionTokens());

        assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"dyn\",\"lora_path\":\"" + a2 + "\"}"),
                400, "The lora adapter 'dyn' has already been loaded.");
        r = ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"dyn\"}");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("Success: LoRA adapter 'dyn' removed successfully.", r.body());
        NotFoundException nf = assertThrows(NotFoundException.class, () -> client.completions().create(greedy("dyn", "x", 5).build()));
        assertTrue(nf.getMessage().contains("The model `dyn` does not exist."), nf.getMessage());
        assertError(ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"dyn\"}"), 404, "The lora adapter 'dyn' cannot be found.");
    }

    @Test
    void adapterLoadingStaysInsideTheAllowedRoots() throws Exception {
        Path allowed = tmp.resolve("allowed");
        assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"x\",\"lora_path\":\"" + tmp.resolve("outside") + "\"}"),
                400, "is outside the allowed adapter directories.");
        assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"x\",\"lora_path\":\"" + allowed + "/../outside\"}"),
                400, "is outside the allowed adapter directories.");
        Files.createSymbolicLink(allowed.resolve("link"), tmp.resolve("outside"));
        assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"x\",\"lora_path\":\"" + allowed.resolve("link") + "\"}"),
                400, "is outside the allowed adapter directories.");
        assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"x\",\"lora_path\":\"" + allowed.resolve("missing") + "\"}"),
                404, "No adapter found for");
        Path bad = Files.createDirectories(allowed.resolve("bad"));
        Files.writeString(bad.resolve("adapter_config.json"), "{\"r\": 8}");
        HttpResponse<String> r = ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"bad\",\"lora_path\":\"" + bad + "\"}");
        assertEquals(400, r.statusCode(), r.body());
        assertTrue(JSON.readTree(r.body()).at("/error/message").asText().startsWith("Failed to load LoRA adapter 'bad'"), r.body());
        assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"x\"}"), 400, "Both 'lora_name' and 'lora_path' must be provided.");
        assertError(ts.post("/v1/unload_lora_adapter", "{}"), 400, "either 'lora_name' and 'lora_int_id' needs to be provided.");
        assertFalse(client.models().list().data().stream().anyMatch(m -> m.id().equals("x") || m.id().equals("bad")));
    }

    @Test
    void unknownModelIs404NeverAFallBack() {
        NotFoundException e = assertThrows(NotFoundException.class, () -> client.completions().create(greedy("nope", "x", 5).build()));
        assertEquals(404, e.statusCode());
        assertTrue(e.getMessage().contains("The model `nope` does not exist."), e.getMessage());
        assertEquals("NotFoundError", e.type().orElse(null));
        assertThrows(NotFoundException.class, () -> client.chat().completions().create(ChatCompletionCreateParams.builder()
                .model("nope").addUserMessage("x").build()));
    }

    @Test
    void invalidParametersAre400WithTheirMessage() {
        record Case(String body, String message) {}
        List<Case> cases = List.of(
                new Case("{\"prompt\":\"x\",\"temperature\":-1}", "temperature must be between 0.0 and 100.0, got -1"),
                new Case("{\"prompt\":\"x\",\"top_p\":0}", "top_p must be between"),
                new Case("{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens must be between 1 and"),
                new Case("{\"prompt\":\"x\",\"max_tokens\":\"ten\"}", "max_tokens: expected an integer, got a string"),
                new Case("{\"prompt\":\"x\",\"n\":0}", "n must be between 1 and 256"),
                new Case("{\"prompt\":\"x\",\"logprobs\":21}", "logprobs must be between 0 and 20"),
                new Case("{\"prompt\":\"x\",\"presence_penalty\":3}", "presence_penalty must be between -2.0 and 2.0"),
                new Case("{\"prompt\":\"x\",\"stop\":[1]}", "stop: expected a string or a list of strings"),
                new Case("{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "Stream options can only be defined when `stream=True`."),
                new Case("{\"prompt\":[1,99999]}", "Token id 99999 is out of vocabulary"),
                new Case("{\"prompt\":[]}", "prompt: the list must not be empty"),
                new Case("{\"prompt\":{}}", "prompt: expected a string"),
                new Case("{}", "prompt: this field is required"),
                new Case("{\"prompt\":\"x\",\"model\":5}", "model: expected a string"),
                new Case("{\"prompt\":\"x\",\"seed\":1.5}", "seed: expected a 64-bit integer"));
        for (Case c : cases) assertError(ts.post("/v1/completions", c.body), 400, c.message);
        assertError(ts.post("/v1/chat/completions", "{\"messages\":[]}"), 400, "messages: expected a non-empty list of messages");
        assertError(ts.post("/v1/chat/completions", "{\"messages\":[{\"content\":\"x\"}]}"), 400, "messages: each message needs a string 'role'");
        assertError(ts.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}"),
                400, "when using `top_logprobs`, `logprobs` must be set to true.");
        BadRequestException e = assertThrows(BadRequestException.class, () -> client.completions().create(
                CompletionCreateParams.builder().model(TestServer.MODEL).prompt("x").temperature(-1).build()));
        assertEquals(400, e.statusCode());
        assertEquals("BadRequestError", e.type().orElse(null));
    }

    @Test
    void malformedJsonIs400() {
        assertError(ts.post("/v1/completions", "{\"prompt\": \"x\""), 400, "Invalid JSON in the request body");
        assertError(ts.post("/v1/completions", "[1,2]"), 400, "The request body must be a JSON object.");
        assertError(ts.post("/v1/completions", ""), 400, "The request body must be a JSON object.");
    }

    @Test
    void promptLongerThanTheContextIs400() {
        String longPrompt = "Once upon a time ".repeat(200);
        int p = ts.engine.tokenizer().encode(longPrompt, true).length;
        assertError(ts.post("/v1/completions", "{\"prompt\":\"" + longPrompt + "\",\"max_tokens\":10}"), 400,
                "This model's maximum context length is 512 tokens. However, you requested " + (p + 10) + " tokens (" + p
                        + " in the messages, 10 in the completion). Please reduce the length of the messages or completion.");
        assertError(ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":600}"), 400,
                "This model's maximum context length is 512 tokens. However, you requested 602 tokens (2 in the messages, 600 in the completion).");
        assertError(ts.post("/v1/completions", "{\"prompt\":\"" + longPrompt + "\"}"), 400,
                "This model's maximum context length is 512 tokens. However, your request has " + p + " input tokens.");
        Executable viaClient = () -> client.completions().create(greedy(TestServer.MODEL, longPrompt, 10).build());
        assertThrows(BadRequestException.class, viaClient);
    }

    @Test
    void oversizedBodyIs413() {
        byte[] big = new byte[9 << 20];
        java.util.Arrays.fill(big, (byte) ' ');
        HttpResponse<String> r = ts.post("/v1/completions", big, null);
        assertError(r, 413, "The request body is larger than 8388608 bytes.");
    }

    @Test
    void healthMetricsAndAccessLog() {
        client.completions().create(greedy(TestServer.MODEL, "Once", 5).build());
        assertEquals(200, ts.get("/health").statusCode());
        HttpResponse<String> m = ts.get("/metrics");
        assertEquals(200, m.statusCode());
        String text = m.body();
        for (String name : List.of("vllm:num_requests_running{", "vllm:num_requests_waiting{", "vllm:kv_cache_usage_perc{",
                "vllm:prompt_tokens_total{", "vllm:generation_tokens_total{", "vllm:time_to_first_token_seconds_bucket{",
                "vllm:inter_token_latency_seconds_bucket{", "vllm:e2e_request_latency_seconds_bucket{",
                "vllm:request_success_total{finished_reason=\"length\"", "vllm:lora_requests_info{max_lora=\"8\"",
                "bdserve:adapter_requests_total{", "bdserve:adapter_resident{adapter=\"static\""))
            assertTrue(text.contains(name), name + " missing from\n" + text);
        String log = ts.accessLog.toString(java.nio.charset.StandardCharsets.UTF_8);
        String line = log.lines().filter(l -> l.contains("path=/v1/completions") && l.contains("status=200")).findFirst().orElseThrow();
        for (String k : List.of("id=cmpl-", "adapter=", "prompt_tokens=", "completion_tokens=", "ttft_ms=", "total_ms="))
            assertTrue(line.contains(k), k + " missing in " + line);
    }

    @Test
    void unknownRouteAndWrongMethod() {
        assertError(ts.get("/v1/nothing"), 404, "Not Found");
        assertError(ts.get("/v1/completions"), 405, "Method Not Allowed");
    }

    static void assertError(HttpResponse<String> r, int status, String messagePart) {
        assertEquals(status, r.statusCode(), r.body());
        try {
            JsonNode e = JSON.readTree(r.body()).get("error");
            assertNotNull(e, r.body());
            assertTrue(e.get("message").asText().contains(messagePart), "expected '" + messagePart + "' in " + r.body());
            assertEquals(status, e.get("code").asInt());
            assertTrue(e.has("type") && e.has("param"), r.body());
        } catch (java.io.IOException ex) {
            throw new AssertionError(r.body(), ex);
        }
    }

    @SuppressWarnings("unused")
    private static String joined(List<String> l) { return l.stream().collect(Collectors.joining()); }

    @SuppressWarnings("unused")
    private static void unused(OpenAIServiceException e, JsonValue v) {}
}
