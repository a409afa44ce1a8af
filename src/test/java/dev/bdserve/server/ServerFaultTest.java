package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.RateLimitException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.bdserve.engine.AdapterInfo;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.EngineException;
import dev.bdserve.engine.EngineRequest;
import dev.bdserve.engine.EngineStats;
import dev.bdserve.engine.ForwardingRunner;
import dev.bdserve.engine.RequestHandle;
import dev.bdserve.engine.RequestListener;
import dev.bdserve.engine.RequestResult;
import dev.bdserve.engine.TokenEvent;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** Queue full, a broken engine, client disconnects and the API key, with a fault-injecting engine in front of the real one. */
class ServerFaultTest {
    static TestServer real;
    static Faulty faulty;
    static OpenAiServer server;

    /**
     * Delegates to the real engine, but can refuse submissions, fail requests after k tokens, slow every token down
     * (its listener sleeps on the engine's step thread, so that a generation surely outlasts a test's client), or
     * report unhealthy.
     */
    static final class Faulty implements ServingEngine {
        final ServingEngine d;
        volatile EngineException refuse;
        volatile int failAfterTokens = -1;
        volatile long tokenDelayMillis;
        volatile boolean healthy = true;

        Faulty(ServingEngine d) { this.d = d; }

        @Override public LlamaConfig modelConfig() { return d.modelConfig(); }
        @Override public Tokenizer tokenizer() { return d.tokenizer(); }
        @Override public EngineConfig config() { return d.config(); }
        @Override public AdapterInfo registerAdapter(String n, Path p, boolean pin) { return d.registerAdapter(n, p, pin); }
        @Override public void unregisterAdapter(String n, Duration w) { d.unregisterAdapter(n, w); }
        @Override public List<AdapterInfo> adapters() { return d.adapters(); }
        @Override public EngineStats stats() { return d.stats(); }
        @Override public boolean healthy() { return healthy && d.healthy(); }
        @Override public void shutdown(Duration g) { d.shutdown(g); }
        @Override public void close() { d.close(); }

        @Override
        public RequestHandle submit(EngineRequest r, RequestListener listener) {
            if (refuse != null) throw refuse;
            long delay = tokenDelayMillis;
            RequestListener l = delay > 0 ? slowed(listener, delay) : listener;
            int k = failAfterTokens;
            if (k < 0) return d.submit(r, l);
            AtomicInteger seen = new AtomicInteger();
            RequestHandle[] h = new RequestHandle[1];
            boolean[] failed = {false};
            h[0] = d.submit(r, new RequestListener() {
                @Override public void onToken(TokenEvent e) {
                    if (failed[0]) return;
                    if (seen.incrementAndGet() > k) {
                        failed[0] = true;
                        l.onError(new EngineException(503, "The engine is unavailable: rank 1 failed"));
                        return;
                    }
                    l.onToken(e);
                }
                @Override public void onFinish(RequestResult res) { if (!failed[0]) l.onFinish(res); }
                @Override public void onError(EngineException e) { if (!failed[0]) l.onError(e); }
            });
            return h[0];
        }

        private static RequestListener slowed(RequestListener l, long delayMillis) {
            return new RequestListener() {
                @Override public void onToken(TokenEvent e) {
                    try { Thread.sleep(delayMillis); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); }
                    l.onToken(e);
                }
                @Override public void onFinish(RequestResult res) { l.onFinish(res); }
                @Override public void onError(EngineException e) { l.onError(e); }
            };
        }
    }

    @BeforeAll
    static void start() {
        real = new TestServer(1);
        faulty = new Faulty(ServingEngine.of(real.engine));
        server = new OpenAiServer(faulty, OpenAiServer.Options.defaults(TestServer.MODEL)).start();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (real != null) real.close();
    }

    @AfterEach
    void reset() {
        faulty.refuse = null;
        faulty.failAfterTokens = -1;
        faulty.tokenDelayMillis = 0;
        faulty.healthy = true;
    }

    OpenAIClient client() {
        return com.openai.client.okhttp.OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + server.port() + "/v1")
                .apiKey("none").maxRetries(0).build();
    }

    @Test
    void fullQueueIs429WithRetryAfter() throws Exception {
        faulty.refuse = new EngineException(429, "The server is overloaded: 4096 requests are queued. Please retry later.");
        RateLimitException e = assertThrows(RateLimitException.class, () -> client().completions().create(
                CompletionCreateParams.builder().model(TestServer.MODEL).prompt("x").maxTokens(3).build()));
        assertEquals(429, e.statusCode());
        assertEquals("1", e.headers().values("Retry-After").get(0));
        assertTrue(e.getMessage().contains("The server is overloaded"), e.getMessage());
    }

    @Test
    void realQueueLimitGives429() {
        EngineConfig tiny = new EngineConfig(1, 64, 8, 8, 64, 8L << 20, 16, 1, true);
        try (TestServer ts = new TestServer(1, tiny, o -> o, r -> ForwardingRunner.paced(r, 3))) {
            // two long requests (≥ 1.4 s each at ≥ 3 ms a step) fill the running slot and the one waiting place; the third is refused
            Thread a = Thread.ofVirtual().start(() -> ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":480,\"ignore_eos\":true}"));
            Thread b = Thread.ofVirtual().start(() -> ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":480,\"ignore_eos\":true}"));
            long until = System.nanoTime() + 10_000_000_000L;
            while (ts.engine.stats().running() + ts.engine.stats().waiting() < 2 && System.nanoTime() < until) Thread.onSpinWait();
            HttpResponse<String> r = ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}");
            ServerApiTest.assertError(r, 429, "The server is overloaded");
            assertEquals("1", r.headers().firstValue("Retry-After").orElseThrow());
            a.join();
            b.join();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void engineFailureMidRequestIs503AndHealthFollowsTheEngine() throws Exception {
        faulty.failAfterTokens = 3;
        HttpResponse<String> r = post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":20}");
        ServerApiTest.assertError(r, 503, "rank 1 failed");
        // streaming: the 200 went out; the stream carries the error event, then [DONE]
        HttpResponse<String> s = post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":20,\"stream\":true}");
        assertEquals(200, s.statusCode());
        assertTrue(s.body().contains("\"error\":{\"message\":\"The engine is unavailable: rank 1 failed\",\"type\":\"ServiceUnavailableError\",\"param\":null,\"code\":503}"), s.body());
        assertTrue(s.body().endsWith("data: [DONE]\n\n"), s.body());
        faulty.healthy = false;
        HttpResponse<String> h = get("/health");
        assertEquals(503, h.statusCode());
        faulty.healthy = true;
        assertEquals(200, get("/health").statusCode());
    }

    @Test
    void clientDisconnectCancelsTheRequest() throws Exception {
        long aborted0 = awaitIdle().requestsFinished().getOrDefault("abort", 0L);   // no other test's request still running
        faulty.tokenDelayMillis = 10;   // 500 tokens take ≥ 5 s: the request still runs when the client leaves, on any host
        String body = "{\"prompt\":\"Once\",\"max_tokens\":500,\"ignore_eos\":true,\"stream\":true}";
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            OutputStream out = s.getOutputStream();
            out.write(rawPost(body));
            out.flush();
            InputStream in = s.getInputStream();
            byte[] buf = new byte[2048];
            int n = in.read(buf);   // the headers and the first chunks
            assertTrue(n > 0 && new String(buf, 0, n, StandardCharsets.UTF_8).startsWith("HTTP/1.1 200"));
        }
        long until = System.nanoTime() + 20_000_000_000L;
        // the stats are published once per engine step: wait for both the abort and the running count to show it
        while ((real.engine.stats().requestsFinished().getOrDefault("abort", 0L) == aborted0 || real.engine.stats().running() != 0)
                && System.nanoTime() < until) Thread.sleep(20);
        assertEquals(aborted0 + 1, real.engine.stats().requestsFinished().getOrDefault("abort", 0L), "the request was not cancelled");
        assertEquals(0, real.engine.stats().running(), "the cancelled request still runs");
        // and the server still answers
        faulty.tokenDelayMillis = 0;
        assertEquals(200, post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}").statusCode());
    }

    @Test
    void clientDisconnectCancelsANonStreamingRequestAndFreesItsKvBlocks() throws Exception {
        EngineStats idle = awaitIdle();
        long aborted0 = idle.requestsFinished().getOrDefault("abort", 0L);
        faulty.tokenDelayMillis = 10;   // 500 tokens take ≥ 5 s: the request is surely running when the client leaves
        String body = "{\"prompt\":\"Once\",\"max_tokens\":500,\"ignore_eos\":true}";
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            OutputStream out = s.getOutputStream();
            out.write(rawPost(body));
            out.flush();
            long until = System.nanoTime() + 10_000_000_000L;
            while ((real.engine.stats().running() == 0 || real.engine.stats().kvUsage() <= idle.kvUsage()) && System.nanoTime() < until)
                Thread.sleep(5);
            assertEquals(1, real.engine.stats().running(), "the request runs");
            assertTrue(real.engine.stats().kvUsage() > idle.kvUsage(), "and holds KV blocks");
            assertEquals(0, s.getInputStream().available(), "nothing was answered yet");
        }                                                                   // the client goes away without reading
        // cancelled, not run to its length (that takes ≥ 5 s): the wait ends as soon as the abort shows
        long until = System.nanoTime() + 20_000_000_000L;
        while (!(real.engine.stats().requestsFinished().getOrDefault("abort", 0L) > aborted0 && real.engine.stats().running() == 0
                && real.engine.stats().kvUsage() == idle.kvUsage()) && System.nanoTime() < until) Thread.sleep(5);
        EngineStats after = real.engine.stats();
        assertEquals(aborted0 + 1, after.requestsFinished().getOrDefault("abort", 0L), "the request was cancelled");
        assertEquals(0, after.running());
        assertEquals(idle.kvUsage(), after.kvUsage(), 1e-12, "its KV blocks were freed");
        assertEquals(idle.requestsFinished().getOrDefault("length", 0L), after.requestsFinished().getOrDefault("length", 0L),
                "it did not run to its length");
        // the server still answers, also a keep-alive connection whose request completes normally while watched
        faulty.tokenDelayMillis = 0;
        assertEquals(200, post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}").statusCode());
        assertEquals(200, post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}").statusCode());
    }

    @Test
    void aRequestPipelinedBehindAWatchedOneIsAnsweredInTurn() throws Exception {
        faulty.tokenDelayMillis = 5;    // the first request is still running when the second one arrives
        String first = "{\"prompt\":\"Once\",\"max_tokens\":40,\"temperature\":0}", second = "{\"prompt\":\"The cat\",\"max_tokens\":2,\"temperature\":0}";
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            out.write(rawPost(first));
            out.flush();
            long until = System.nanoTime() + 10_000_000_000L;
            while (real.engine.stats().running() == 0 && System.nanoTime() < until) Thread.sleep(2);
            out.write(rawPost(second));                                     // pipelined: sent before the first answer
            out.flush();
            var in = new java.io.DataInputStream(s.getInputStream());
            JsonNode a = readResponse(in), b = readResponse(in);
            assertEquals(40, a.at("/usage/completion_tokens").asInt(), a.toString());
            assertEquals(2, b.at("/usage/completion_tokens").asInt(), b.toString());
            assertEquals(4, b.at("/usage/prompt_tokens").asInt(), "the second answer is the second request's: " + b);
            // the connection stays usable after a watch that ended without reading (the second request's)
            out.write(rawPost(second));
            out.flush();
            assertEquals(2, readResponse(in).at("/usage/completion_tokens").asInt());
        }
    }

    private static byte[] rawPost(String body) {
        return ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8);
    }

    /** Reads one HTTP/1.1 response with a Content-Length body; asserts 200 and returns the JSON body. */
    private static JsonNode readResponse(java.io.DataInputStream in) throws Exception {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) head.append((char) in.readUnsignedByte());
        String h = head.toString();
        assertTrue(h.startsWith("HTTP/1.1 200"), h);
        int len = -1;
        for (String line : h.split("\r\n"))
            if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) len = Integer.parseInt(line.substring(15).trim());
        assertTrue(len >= 0, "a Content-Length: " + h);
        byte[] b = new byte[len];
        in.readFully(b);
        return JSON.readTree(b);
    }

    /** Waits until the engine runs and queues nothing; returns its stats then. */
    private static EngineStats awaitIdle() throws InterruptedException {
        long until = System.nanoTime() + 30_000_000_000L;
        EngineStats st = real.engine.stats();
        while ((st.running() > 0 || st.waiting() > 0 || st.kvUsage() > 0) && System.nanoTime() < until) {
            Thread.sleep(10);
            st = real.engine.stats();
        }
        assertEquals(0, st.running() + st.waiting(), "the engine is idle");
        return st;
    }

    @Test
    void aLostTpRankTurnsInFlightRequestsInto503s() throws Exception {
        try (TestServer ts = new TestServer(2, TestServer.config(), o -> o, r -> ForwardingRunner.paced(r, 3))) {   // 500 tokens: ≥ 1.5 s
            String body = "{\"prompt\":\"Once\",\"max_tokens\":500,\"ignore_eos\":true";
            var plain = java.util.concurrent.CompletableFuture.supplyAsync(() -> ts.post("/v1/completions", body + "}"));
            var streamed = java.util.concurrent.CompletableFuture.supplyAsync(() -> ts.post("/v1/completions", body + ",\"stream\":true}"));
            long until = System.nanoTime() + 20_000_000_000L;
            while (ts.engine.stats().running() < 2 && System.nanoTime() < until) Thread.sleep(5);
            ts.runner.failRank(1, "killed by the test");
            HttpResponse<String> r = plain.get(30, java.util.concurrent.TimeUnit.SECONDS);
            ServerApiTest.assertError(r, 503, "rank 1 failed: killed by the test");
            HttpResponse<String> s = streamed.get(30, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(200, s.statusCode());
            assertTrue(s.body().contains("\"type\":\"ServiceUnavailableError\",\"param\":null,\"code\":503}}"), s.body());
            assertTrue(s.body().endsWith("data: [DONE]\n\n"), s.body());
            assertEquals(503, ts.get("/health").statusCode());
            ServerApiTest.assertError(ts.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}"), 503, "");
        }
    }

    @Test
    void unloadingAnAdapterInUseWaitsThenCancels(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path a = TestServer.synthAdapter(dir.resolve("busy"), 5, 0);
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(dir)).withUnloadWait(Duration.ofMillis(50)),
                r -> ForwardingRunner.paced(r, 3))) {   // 500 tokens take ≥ 1.5 s, far beyond the 50 ms the unload waits
            assertEquals(200, ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"busy\",\"lora_path\":\"" + a + "\"}").statusCode());
            var running = java.util.concurrent.CompletableFuture.supplyAsync(() -> ts.post("/v1/completions",
                    "{\"model\":\"busy\",\"prompt\":\"Once\",\"max_tokens\":500,\"ignore_eos\":true}"));
            long until = System.nanoTime() + 20_000_000_000L;
            while (ts.engine.stats().running() == 0 && System.nanoTime() < until) Thread.sleep(5);
            HttpResponse<String> u = ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"busy\"}");
            assertEquals(200, u.statusCode(), u.body());
            HttpResponse<String> r = running.get(30, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.body().contains("\"finish_reason\":\"abort\""), r.body());
            ServerApiTest.assertError(ts.post("/v1/completions", "{\"model\":\"busy\",\"prompt\":\"x\"}"), 404, "The model `busy` does not exist.");
        }
    }

    /**
     * Issue 21's scenario: a dense adapter loaded at run time under bdlora sharding at TP 2 is refused with a 400 naming
     * it, the reason and the fix, and the server goes on serving; a BD adapter that fits is served.
     */
    @Test
    void anAdapterThatCannotRunUnderTheShardingIsRefusedAtLoad(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path dense = TestServer.synthAdapter(dir.resolve("dense-r4"), 5, 0), bd = TestServer.synthAdapter(dir.resolve("bd"), 6, 2);
        try (TestServer ts = new TestServer(2, dev.bdserve.lora.LoraSharding.BDLORA, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(dir)), r -> r)) {
            HttpResponse<String> r = ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"dense\",\"lora_path\":\"" + dense + "\"}");
            ServerApiTest.assertError(r, 400, "Failed to load LoRA adapter 'dense': adapter dense cannot use bdlora sharding at TP 2: not a BD-LoRA adapter; "
                    + "to serve it, run with --lora-sharding auto --lora-fallback replicated (or slora)");
            ServerApiTest.assertError(ts.post("/v1/completions", "{\"model\":\"dense\",\"prompt\":\"Once\",\"max_tokens\":3}"), 404, "does not exist");
            assertEquals(200, ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"bd\",\"lora_path\":\"" + bd + "\"}").statusCode());
            assertEquals(200, ts.post("/v1/completions", "{\"model\":\"bd\",\"prompt\":\"Once\",\"max_tokens\":3}").statusCode());
            assertEquals(200, ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}").statusCode());
            assertEquals(200, ts.get("/health").statusCode());
        }
    }

    @Test
    void apiKeyIsRequiredOnV1() {
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withApiKey("sekret"))) {
            UnauthorizedException e = assertThrows(UnauthorizedException.class, () -> ts.client("wrong").models().list());
            assertEquals(401, e.statusCode());
            assertThrows(UnauthorizedException.class, () -> ts.client(null).completions().create(
                    CompletionCreateParams.builder().model(TestServer.MODEL).prompt("x").maxTokens(2).build()));
            ServerApiTest.assertError(ts.post("/v1/completions", "{\"prompt\":\"x\"}".getBytes(StandardCharsets.UTF_8), null), 401, "Unauthorized");
            assertEquals(1, ts.client("sekret").models().list().data().size());
            Completion c = ts.client("sekret").completions().create(CompletionCreateParams.builder().model(TestServer.MODEL).prompt("x").maxTokens(2).build());
            assertEquals(2, c.usage().orElseThrow().completionTokens());
            assertEquals(200, ts.get("/health").statusCode());   // health and metrics stay open
            assertEquals(200, ts.get("/metrics").statusCode());
        }
    }

    @Test
    void drainingRefusesNewRequestsWith503() throws Exception {
        try (TestServer ts = new TestServer(1)) {
            OpenAIClient c = ts.client();
            StringBuilder sb = new StringBuilder();
            Thread inflight = Thread.ofVirtual().start(() -> {
                try (StreamResponse<Completion> s = c.completions().createStreaming(CompletionCreateParams.builder()
                        .model(TestServer.MODEL).prompt("Once").maxTokens(200).temperature(0).build())) {
                    s.stream().forEach(x -> x.choices().forEach(ch -> sb.append(ch.text())));
                }
            });
            long until = System.nanoTime() + 10_000_000_000L;
            while (ts.engine.stats().running() == 0 && System.nanoTime() < until) Thread.onSpinWait();
            ts.server.stopAdmitting();
            ServerApiTest.assertError(ts.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}"), 503, "The server is shutting down.");
            ts.engine.shutdown(Duration.ofSeconds(30));
            inflight.join(30_000);
            assertFalse(sb.isEmpty(), "the in-flight request finished");
            assertTrue(ts.engine.stats().requestsFinished().getOrDefault("length", 0L) >= 1, "the in-flight request ran to its length");
        }
    }

    private HttpResponse<String> post(String path, String body) {
        try {
            return real.http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.port() + path))
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private HttpResponse<String> get(String path) {
        try {
            return real.http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.port() + path))
                    .GET().build(), HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
}
