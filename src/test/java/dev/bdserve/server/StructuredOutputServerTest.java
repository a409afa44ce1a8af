package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.models.ResponseFormatJsonSchema;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.bdserve.engine.Engine;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.structured.JsonSchemaConstraintTest;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.HfTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Structured output end to end, through the official OpenAI Java client against a running server: on stories260K and
 * on synthetic models with the real Llama-3 and Qwen3 vocabularies, every schema of the phase-1 suite gives output that
 * parses and validates (the networknt validator), bounded schemas within max_tokens 256; regex, choice and GBNF
 * likewise; a constrained and a free request batched together get what they get alone; bad constraints are 400s with
 * their location; streaming gives the same text. One server per model, shared by the tests.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StructuredOutputServerTest {
    /** A server over a synthetic model with a real tokenizer's vocabulary. */
    record Synth(TpGroup group, Engine engine, OpenAiServer server) implements AutoCloseable {
        static Synth of(String vocab) {
            Tokenizer tok = HfTokenizer.load(GgufTestFiles.realTokenizer(vocab));
            int eos = tok.eosIds()[0];
            LlamaConfig c = new LlamaConfig(tok.vocabSize(), 64, 128, 2, 4, 2, 16, 1024, 1e-5f, 10000, null, false,
                    Math.max(tok.bosId(), 0), List.of(eos), "float32");
            TpGroup g = TpGroup.threads(() -> new SynthModel(c, DType.F32, 17),
                    new TpGroup.Options(1, 2, LoraSharding.AUTO, LoraSharding.REPLICATED, 0).withKvCache(64L << 20, 16));
            Engine e = new Engine(g, tok, new EngineConfig(64, 512, 8, 32, 64, 64L << 20, 16, 4096, true));
            ChatTemplate chat = ChatTemplate.forModel(GgufTestFiles.realTokenizer(vocab), llama32Template(vocab)).withToolCallParser("auto");
            OpenAiServer s = new OpenAiServer(ServingEngine.of(e), OpenAiServer.Options.defaults(vocab).withChatTemplate(chat)).start();
            return new Synth(g, e, s);
        }

        /** The npm Llama-3 vocabulary ships Llama 3.0's template, which has no tools: use Llama 3.2's on it. */
        static java.nio.file.Path llama32Template(String vocab) {
            try {
                return vocab.equals("llama3") ? java.nio.file.Path.of(StructuredOutputServerTest.class.getResource("templates/llama3_2.jinja").toURI()) : null;
            } catch (java.net.URISyntaxException e) {
                throw new AssertionError(e);
            }
        }

        @Override public void close() {
            server.close();
            engine.close();
            group.close();
        }
    }

    private final Map<String, AutoCloseable> servers = new ConcurrentHashMap<>();
    private final Map<String, String> bases = new ConcurrentHashMap<>();
    private final ExecutorService pool = Executors.newFixedThreadPool(12);

    /** The base URL of the server for "stories260K", "llama3" or "qwen3", started on first use. */
    synchronized String base(String model) {
        return bases.computeIfAbsent(model, m -> {
            if (m.equals(TestServer.MODEL)) {
                TestServer t = new TestServer(1);
                servers.put(m, t);
                return t.base();
            }
            Synth s = Synth.of(m);
            servers.put(m, s);
            return "http://127.0.0.1:" + s.server().port();
        });
    }

    OpenAIClient client(String model) {
        return OpenAIOkHttpClient.builder().baseUrl(base(model) + "/v1").apiKey("none").maxRetries(0).timeout(Duration.ofSeconds(120)).build();
    }

    @AfterAll
    void close() throws Exception {
        pool.shutdownNow();
        for (AutoCloseable c : servers.values()) c.close();
    }

    static JsonValue json(String text) {
        try {
            return JsonValue.from(Json.MAPPER.readValue(text, Object.class));
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** A greedy completion with extra body fields; returns [text, finish reason]. */
    static String[] complete(OpenAIClient client, String model, String prompt, int maxTokens, Map<String, JsonValue> extra) {
        CompletionCreateParams.Builder b = CompletionCreateParams.builder().model(model).prompt(prompt).maxTokens(maxTokens).temperature(0);
        extra.forEach(b::putAdditionalBodyProperty);
        Completion c = client.completions().create(b.build());
        return new String[]{c.choices().getFirst().text(), c.choices().getFirst().finishReason().toString()};
    }

    <T> List<T> parallel(List<java.util.concurrent.Callable<T>> jobs) throws Exception {
        List<Future<T>> fs = new ArrayList<>();
        for (var j : jobs) fs.add(pool.submit(j));
        List<T> out = new ArrayList<>();
        for (Future<T> f : fs) out.add(f.get());
        return out;
    }

    // ---------------------------------------------------------------- the schema suite

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"stories260K", "llama3", "qwen3"})
    void everySchemaOfTheSuiteGivesValidJson(String model) throws Exception {
        OpenAIClient client = client(model);
        List<JsonSchemaConstraintTest.Case> cases = JsonSchemaConstraintTest.cases();
        assertTrue(cases.size() >= 30);
        List<java.util.concurrent.Callable<String[]>> jobs = new ArrayList<>();
        for (var c : cases) {
            if (model.equals(TestServer.MODEL)) {   // the chat API with the client's typed response_format
                jobs.add(() -> {
                    ChatCompletion r = client.chat().completions().create(ChatCompletionCreateParams.builder().model(model)
                            .addUserMessage("Give me " + c.name()).maxCompletionTokens(256).temperature(0)
                            .responseFormat(schemaFormat(c.schema())).build());
                    return new String[]{r.choices().getFirst().message().content().orElse(""), r.choices().getFirst().finishReason().toString()};
                });
            } else {                                // the completions API with response_format as an extra field
                Map<String, JsonValue> rf = Map.of("response_format", json("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"t\",\"strict\":true,\"schema\":"
                        + c.schema() + "}}"));
                jobs.add(() -> complete(client, model, "Here is " + c.name() + " as JSON:", 256, rf));
            }
        }
        List<String[]> got = parallel(jobs);
        List<String> failures = new ArrayList<>();
        int stopped = 0;
        for (int i = 0; i < cases.size(); i++) {
            var c = cases.get(i);
            String text = got.get(i)[0], finish = got.get(i)[1];
            if (finish.equals("length")) {
                if (c.bounded()) failures.add(c.name() + ": stopped at length (bounded schema): " + text);
                continue;
            }
            stopped++;
            try {
                Json.MAPPER.readTree(text);
            } catch (Exception e) {
                failures.add(c.name() + ": does not parse: " + text);
                continue;
            }
            var errors = JsonSchemaConstraintTest.validate(c.schema(), text);
            if (!errors.isEmpty()) failures.add(c.name() + ": " + errors + " in " + text);
        }
        assertEquals(List.of(), failures);
        assertTrue(stopped >= 20, stopped + " outputs ended with stop");
    }

    static ResponseFormatJsonSchema schemaFormat(String schema) throws Exception {
        ResponseFormatJsonSchema.JsonSchema.Schema.Builder sb = ResponseFormatJsonSchema.JsonSchema.Schema.builder();
        Json.MAPPER.readTree(schema).properties().forEach(e -> sb.putAdditionalProperty(e.getKey(), json(e.getValue().toString())));
        return ResponseFormatJsonSchema.builder().jsonSchema(ResponseFormatJsonSchema.JsonSchema.builder().name("t").strict(true)
                .schema(sb.build()).build()).build();
    }

    // ---------------------------------------------------------------- regex, choice, GBNF

    /** Each field, vLLM's current and older spelling, with a Java regex every output must match. */
    record Other(String field, String value, String mustMatch) {}

    static final List<Other> OTHERS = List.of(
            new Other("structured_outputs", "{\"regex\":\"[A-Z][a-z]{2,6}( [a-z]{2,6}){0,3}\\\\.\"}", "[A-Z][a-z]{2,6}( [a-z]{2,6}){0,3}\\."),
            new Other("guided_regex", "\"(\\\\d{3}-){2}\\\\d{4}\"", "(\\d{3}-){2}\\d{4}"),
            new Other("structured_outputs", "{\"choice\":[\"positive\",\"negative\",\"neutral\"]}", "positive|negative|neutral"),
            new Other("guided_choice", "[\"yes\",\"no\",\"ça dépend\"]", "yes|no|ça dépend"),
            new Other("structured_outputs", "{\"grammar\":\"root ::= \\\"(\\\" item (\\\",\\\" item (\\\",\\\" item)?)? \\\")\\\"\\nitem ::= [a-z] [a-z0-9]? [a-z0-9]?\"}",
                    "\\([a-z][a-z0-9]{0,2}(,[a-z][a-z0-9]{0,2}){0,2}\\)"),
            new Other("guided_grammar", "\"root ::= (\\\"yes\\\" | \\\"no\\\") \\\" because \\\" w (\\\" \\\" w)? \\\".\\\"\\nw ::= [a-z] [a-z]? [a-z]? [a-z]?\"",
                    "(yes|no) because [a-z]{1,4}( [a-z]{1,4})?\\."),
            new Other("structured_outputs", "{\"json\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"],\"additionalProperties\":false}}",
                    "\\s*\\{\\s*\"ok\"\\s*:\\s*(true|false)\\s*}\\s*"),
            new Other("guided_json", "\"{\\\"type\\\":\\\"integer\\\",\\\"minimum\\\":1,\\\"maximum\\\":12}\"", "\\s*([1-9]|1[0-2])\\s*"),
            new Other("response_format", "{\"type\":\"json_object\"}", "\\{.*}"));

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"stories260K", "llama3", "qwen3"})
    void regexChoiceGrammarAndTheOtherFieldsConstrain(String model) throws Exception {
        OpenAIClient client = client(model);
        List<java.util.concurrent.Callable<String[]>> jobs = new ArrayList<>();
        for (Other o : OTHERS) jobs.add(() -> complete(client, model, "Say it:", 256, Map.of(o.field(), json(o.value()))));
        List<String[]> got = parallel(jobs);
        for (int i = 0; i < OTHERS.size(); i++) {
            Other o = OTHERS.get(i);
            String text = got.get(i)[0], finish = got.get(i)[1];
            if (o.field().equals("response_format")) {   // any JSON object: unbounded, a random model may wander
                if (finish.equals("stop")) assertTrue(Json.MAPPER.readTree(text).isObject(), text);
                continue;
            }
            assertEquals("stop", finish, o + " gave " + text);
            assertTrue(text.matches("(?s)" + o.mustMatch()), o + " gave " + text);
        }
    }

    // ---------------------------------------------------------------- batching, streaming, errors

    @Test
    void constrainedAndFreeRequestsInOneBatchGetWhatTheyGetAlone() throws Exception {
        String model = "llama3";
        OpenAIClient client = client(model);
        Map<String, JsonValue> schema = Map.of("response_format", json("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":"
                + JsonSchemaConstraintTest.cases().stream().filter(c -> c.name().equals("nested order")).findFirst().orElseThrow().schema() + "}}"));
        Map<String, JsonValue> regex = Map.of("guided_regex", json("\"[a-z]{1,8}( [a-z]{1,8}){0,5}\""));
        List<Function<Void, String[]>> reqs = List.of(
                v -> complete(client, model, "One", 40, Map.of()),
                v -> complete(client, model, "One", 200, schema),
                v -> complete(client, model, "Two words", 40, Map.of()),
                v -> complete(client, model, "Two words", 60, regex));
        List<String[]> alone = new ArrayList<>();
        for (var r : reqs) alone.add(r.apply(null));
        for (int round = 0; round < 2; round++) {
            List<java.util.concurrent.Callable<String[]>> jobs = new ArrayList<>();
            for (var r : reqs) jobs.add(() -> r.apply(null));
            List<String[]> together = parallel(jobs);
            for (int i = 0; i < reqs.size(); i++) assertArrayEquals(alone.get(i), together.get(i), "request " + i + " in round " + round);
        }
        assertNotEquals(alone.get(0)[0], alone.get(1)[0]);
        assertEquals("stop", alone.get(1)[1]);
        assertEquals(List.of(), JsonSchemaConstraintTest.validate(JsonSchemaConstraintTest.cases().stream()
                .filter(c -> c.name().equals("nested order")).findFirst().orElseThrow().schema(), alone.get(1)[0]));
    }

    @Test
    void streamingGivesTheSameConstrainedText() throws Exception {
        OpenAIClient client = client(TestServer.MODEL);
        String schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\",\"minimum\":0,"
                + "\"maximum\":120}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";
        ChatCompletionCreateParams p = ChatCompletionCreateParams.builder().model(TestServer.MODEL).addUserMessage("Who is Lily?")
                .maxCompletionTokens(100).temperature(0).responseFormat(schemaFormat(schema)).build();
        String whole = client.chat().completions().create(p).choices().getFirst().message().content().orElseThrow();
        StringBuilder sb = new StringBuilder();
        String[] finish = {null};
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(p)) {
            s.stream().forEach(ch -> ch.choices().forEach(x -> {
                x.delta().content().ifPresent(sb::append);
                x.finishReason().ifPresent(f -> finish[0] = f.toString());
            }));
        }
        assertEquals(whole, sb.toString());
        assertEquals("stop", finish[0]);
        assertEquals(List.of(), JsonSchemaConstraintTest.validate(schema, whole), whole);
        // the completions API streams too, with a regex
        String[] alone = complete(client, TestServer.MODEL, "Once", 50, Map.of("guided_regex", json("\"[A-Z][a-z ]{3,30}\\\\.\"")));
        StringBuilder cs = new StringBuilder();
        CompletionCreateParams.Builder b = CompletionCreateParams.builder().model(TestServer.MODEL).prompt("Once").maxTokens(50).temperature(0)
                .putAdditionalBodyProperty("guided_regex", json("\"[A-Z][a-z ]{3,30}\\\\.\""));
        try (StreamResponse<Completion> s = client.completions().createStreaming(b.build())) {
            s.stream().forEach(ch -> ch.choices().forEach(x -> cs.append(x.text())));
        }
        assertEquals(alone[0], cs.toString());
        assertTrue(cs.toString().matches("[A-Z][a-z ]{3,30}\\."), cs.toString());
    }

    /** A raw request's status and error message. */
    static void assertBadRequest(TestServer ts, String path, String body, String... inMessage) throws Exception {
        HttpResponse<String> r = ts.post(path, body);
        assertEquals(400, r.statusCode(), r.body());
        JsonNode err = Json.MAPPER.readTree(r.body()).get("error");
        String msg = err.get("message").asText();
        for (String s : inMessage) assertTrue(msg.contains(s), "\"" + s + "\" not in: " + msg);
        assertEquals("BadRequestError", err.get("type").asText());
    }

    @Test
    void badConstraintsAre400sWithTheirLocation() throws Exception {
        base(TestServer.MODEL);
        TestServer ts = (TestServer) servers.get(TestServer.MODEL);
        String c = "/v1/completions", h = "{\"model\":\"stories260K\",\"prompt\":\"a\",\"max_tokens\":5,";
        assertBadRequest(ts, c, h + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":"
                + "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"minLength\":\"two\"}}}}}}", "JSON schema", "/properties/a/minLength");
        assertBadRequest(ts, c, h + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"string\",\"contentMediaType\":\"x\"}}}}",
                "contentMediaType");
        assertBadRequest(ts, c, h + "\"guided_regex\":\"ab(?=c)\"}", "regex", "offset");
        assertBadRequest(ts, c, h + "\"structured_outputs\":{\"regex\":\"(a\"}}", "structured_outputs.regex", "offset");
        assertBadRequest(ts, c, h + "\"guided_grammar\":\"root ::= \\\"a\\\"\\nitem ::= [a-\"}", "GBNF", "line 2");
        assertBadRequest(ts, c, h + "\"guided_choice\":[]}", "choice");
        assertBadRequest(ts, c, h + "\"guided_choice\":[\"a\",3]}", "guided_choice", "list of strings");
        assertBadRequest(ts, c, h + "\"response_format\":{\"type\":\"yaml\"}}", "response_format.type", "yaml");
        assertBadRequest(ts, c, h + "\"response_format\":{\"type\":\"json_object\"},\"guided_regex\":\"a\"}", "only one", "response_format", "guided_regex");
        assertBadRequest(ts, c, h + "\"structured_outputs\":{\"regex\":\"a\",\"choice\":[\"b\"]}}", "only one");
        assertBadRequest(ts, c, h + "\"structured_outputs\":{\"structural_tag\":\"x\"}}", "structural_tag");
        assertBadRequest(ts, "/v1/chat/completions", "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"$ref\":\"#/$defs/missing\"}}}}", "missing");
        // through the client: a typed error
        OpenAIClient client = client(TestServer.MODEL);
        BadRequestException e = assertThrows(BadRequestException.class, () -> complete(client, TestServer.MODEL, "a", 5,
                Map.of("guided_regex", json("\"a{3,1}\""))));
        assertTrue(e.getMessage().contains("offset"), e.getMessage());
        // "text" is no constraint; neither is a null field
        assertEquals(200, ts.post(c, h + "\"response_format\":{\"type\":\"text\"},\"guided_regex\":null}").statusCode());
    }

    @Test
    void metricsCountConstrainedRequestsAndMaskTimePerAdapter() throws Exception {
        base(TestServer.MODEL);
        TestServer ts = (TestServer) servers.get(TestServer.MODEL);
        complete(client(TestServer.MODEL), TestServer.MODEL, "x", 20, Map.of("guided_choice", json("[\"alpha\",\"beta\"]")));
        String m = ts.get("/metrics").body();
        assertTrue(m.matches("(?s).*bdserve:constrained_requests_total\\{adapter=\"\",kind=\"choice\",model_name=\"stories260K\"} [1-9].*"), m);
        assertTrue(m.matches("(?s).*bdserve:structured_mask_seconds_count\\{adapter=\"\",model_name=\"stories260K\"} [1-9].*"), m);
    }

    // ---------------------------------------------------------------- tool calls on the real templates

    /**
     * Tool calls through the model's own chat template and its detected call format (Llama 3's JSON, Qwen3's Hermes
     * {@code <tool_call>}): "required" and a named function give calls whose arguments validate.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama3", "qwen3"})
    void requiredAndNamedToolChoicesGiveValidCallsInTheTemplatesFormat(String model) throws Exception {
        OpenAIClient client = client(model);
        ChatCompletion req = client.chat().completions().create(ServerToolCallTest.request(300).model(model)
                .toolChoice(com.openai.models.chat.completions.ChatCompletionToolChoiceOption.Auto.REQUIRED).parallelToolCalls(false).build());
        ChatCompletion named = client.chat().completions().create(ServerToolCallTest.request(300).model(model)
                .toolChoice(com.openai.models.chat.completions.ChatCompletionNamedToolChoice.builder().function(
                        com.openai.models.chat.completions.ChatCompletionNamedToolChoice.Function.builder().name("get_time").build()).build()).build());
        for (ChatCompletion c : List.of(req, named)) {
            assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, c.choices().getFirst().finishReason(), c.toString());
            var calls = ServerToolCallTest.calls(c);
            assertEquals(1, calls.size(), c.toString());
            ServerToolCallTest.assertValidCall(calls.getFirst().function().name(), calls.getFirst().function().arguments());
        }
        assertEquals("get_time", ServerToolCallTest.calls(named).getFirst().function().name());
    }
}
