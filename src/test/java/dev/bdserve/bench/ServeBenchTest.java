package dev.bdserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The load generator against a minimal OpenAI-compatible endpoint started here (a test fixture: it streams
 * max_tokens SSE chunks a few ms apart, with usage, then [DONE]; unknown models get vLLM's 404).
 */
class ServeBenchTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static {
        // The JDK server otherwise leaves Nagle on, which holds back small SSE chunks and merges them.
        System.setProperty("sun.net.httpserver.nodelay", "true");
    }
    private HttpServer server;
    private final AtomicInteger inFlight = new AtomicInteger(), maxInFlight = new AtomicInteger();
    private final Map<String, AtomicInteger> perModel = new ConcurrentHashMap<>();
    private static final Set<String> MODELS = Set.of("base", "a0", "a1", "a2");

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/completions", this::complete);
        server.start();
    }

    @AfterEach
    void stop() { server.stop(0); }

    private String url() { return "http://127.0.0.1:" + server.getAddress().getPort(); }

    private void complete(HttpExchange ex) throws IOException {
        int now = inFlight.incrementAndGet();
        maxInFlight.accumulateAndGet(now, Math::max);
        boolean counted = true;
        try (ex) {
            JsonNode req = JSON.readTree(ex.getRequestBody());
            String model = req.path("model").asText();
            if (!MODELS.contains(model)) {
                byte[] b = ("{\"error\":{\"message\":\"The model `" + model + "` does not exist.\",\"code\":404}}").getBytes(StandardCharsets.UTF_8);
                ex.sendResponseHeaders(404, b.length);
                ex.getResponseBody().write(b);
                return;
            }
            JsonNode lora = req.path("lora");                       // llama-server's per-request adapters
            String key = lora.isArray() && !lora.isEmpty() ? "lora" + lora.get(0).path("id").asInt() + "@" + lora.get(0).path("scale").asDouble() : model;
            perModel.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
            int maxTokens = req.path("max_tokens").asInt();
            int promptWords = req.path("prompt").asText().split(" ").length;
            assertTrue(req.path("stream").asBoolean());
            ex.getResponseHeaders().add("Content-Type", "text/event-stream");
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            Thread.sleep(5);                                       // "prefill"
            for (int i = 0; i < maxTokens; i++) {
                if (i > 0) Thread.sleep(2);
                String chunk = "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"" + model
                        + "\",\"choices\":[{\"index\":0,\"text\":\" w" + i + "\",\"finish_reason\":" + (i == maxTokens - 1 ? "\"length\"" : "null") + "}]}";
                out.write(("data: " + chunk + "\n\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
            String usage = "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":" + (promptWords + 1)
                    + ",\"completion_tokens\":" + maxTokens + ",\"total_tokens\":" + (promptWords + 1 + maxTokens) + "}}";
            inFlight.decrementAndGet();                            // before the client can see the end of the stream
            counted = false;
            out.write(("data: " + usage + "\n\ndata: [DONE]\n\n").getBytes(StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (counted) inFlight.decrementAndGet();
        }
    }

    private ServeBench.Config config(List<String> loras, ServeBench.Assignment a, double rate, int conc, int n, double ratio) {
        return new ServeBench.Config(url(), "/v1/completions", "base", loras, a, 20, 8, ratio, rate, 1.0, conc, n, 7,
                null, true, Duration.ofSeconds(60), false);
    }

    /** llama-server's way: every request names the base model and its adapter as {"lora": [{"id": i, "scale": 1}]}. */
    @Test
    void llamaCppLoraFieldSelectsAdaptersById() throws Exception {
        var c = config(List.of("a0", "a1", "a2"), ServeBench.Assignment.ROUND_ROBIN, Double.POSITIVE_INFINITY, 3, 12, 0);
        var cfg = new ServeBench.Config(c.baseUrl(), c.endpoint(), c.model(), c.loraModules(), c.assignment(), c.inputLen(), c.outputLen(),
                c.rangeRatio(), c.requestRate(), c.burstiness(), c.maxConcurrency(), c.numPrompts(), c.seed(), null, true, c.requestTimeout(), true);
        Map<String, Object> r = ServeBench.run(cfg, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        assertEquals(12, ((Number) r.get("completed")).intValue());
        assertEquals(Set.of("lora0@1.0", "lora1@1.0", "lora2@1.0"), perModel.keySet());
        for (AtomicInteger n : perModel.values()) assertEquals(4, n.get());
    }

    @Test
    void resultKeysAndConsistentNumbers() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        var cfg = config(List.of("a0", "a1", "a2"), ServeBench.Assignment.ROUND_ROBIN, Double.POSITIVE_INFINITY, 4, 24, 0.25);
        Map<String, Object> r = ServeBench.run(cfg, new PrintStream(buf, true, StandardCharsets.UTF_8));
        String printed = buf.toString(StandardCharsets.UTF_8);
        for (String line : List.of("============ Serving Benchmark Result ============", "Successful requests:", "Maximum request concurrency:",
                "Benchmark duration (s):", "Total input tokens:", "Total generated tokens:", "Request throughput (req/s):",
                "Output token throughput (tok/s):", "Total Token throughput (tok/s):", "---------------Time to First Token----------------",
                "Mean TTFT (ms):", "Median TTFT (ms):", "P99 TTFT (ms):", "-----Time per Output Token (excl. 1st token)------",
                "Mean TPOT (ms):", "---------------Inter-token Latency----------------", "Mean ITL (ms):", "P99 ITL (ms):",
                "----------------End-to-end Latency----------------", "Mean E2EL (ms):", "=".repeat(50)))
            assertTrue(printed.contains(line), "summary lacks " + line + ":\n" + printed);
        assertTrue(printed.lines().anyMatch(l -> l.matches("Successful requests: {21}24 *")), printed);

        // the saved JSON round-trips with vLLM's keys
        JsonNode j = JSON.readTree(JSON.writeValueAsString(r));
        for (String k : List.of("date", "backend", "model_id", "num_prompts", "request_rate", "burstiness", "max_concurrency", "duration",
                "completed", "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput",
                "total_token_throughput", "input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors"))
            assertTrue(j.has(k), "missing key " + k);
        for (String m : List.of("ttft", "tpot", "itl", "e2el"))
            for (String s : List.of("mean", "median", "std", "p99")) assertTrue(j.has(s + "_" + m + "_ms"), "missing " + s + "_" + m + "_ms");

        assertEquals(24, j.get("completed").asInt());
        assertEquals(0, j.get("failed").asInt());
        assertEquals("inf", j.get("request_rate").asText());
        double dur = j.get("duration").asDouble();
        long in = j.get("total_input_tokens").asLong(), out = j.get("total_output_tokens").asLong();
        assertEquals(out, j.get("output_throughput").asDouble() * dur, 1e-6 * out);
        assertEquals(in + out, j.get("total_token_throughput").asDouble() * dur, 1e-6 * (in + out));
        assertEquals(24, j.get("request_throughput").asDouble() * dur, 1e-9);
        long sumOut = 0, sumIn = 0;
        for (JsonNode x : j.get("output_lens")) sumOut += x.asLong();
        for (JsonNode x : j.get("input_lens")) sumIn += x.asLong();
        assertEquals(out, sumOut);
        assertEquals(in, sumIn);
        // output lengths drawn in [6, 10] for 8 ± 25%, prompts in [15, 25] words (+1 BOS reported by the fixture)
        for (JsonNode x : j.get("output_lens")) assertTrue(x.asInt() >= 6 && x.asInt() <= 10, "output len " + x);
        for (JsonNode x : j.get("input_lens")) assertTrue(x.asInt() >= 16 && x.asInt() <= 26, "input len " + x);

        for (String m : List.of("ttft", "tpot", "itl", "e2el")) {
            double med = j.get("median_" + m + "_ms").asDouble(), p99 = j.get("p99_" + m + "_ms").asDouble(), mean = j.get("mean_" + m + "_ms").asDouble();
            assertTrue(med > 0 && med <= p99, m + " median " + med + " p99 " + p99);
            assertTrue(mean > 0 && j.get("std_" + m + "_ms").asDouble() >= 0, m);
        }
        // lower bounds only (the fixture sleeps; a loaded client may read chunks late and together, so ITLs have no lower bound):
        // ≥ 5 ms before the first token, ≥ 5 + 2·(6 − 1) ms to the last of at least 6
        assertTrue(j.get("median_ttft_ms").asDouble() >= 5, "ttft");
        assertTrue(j.get("mean_e2el_ms").asDouble() >= 15, "e2el");
        // TTFT plus the inter-token gaps is the time to the last token, which the end-to-end latency includes
        double itlTotal = 0, ttftTotal = 0;
        for (int i = 0; i < 24; i++) {
            ttftTotal += j.get("ttfts").get(i).asDouble();
            for (JsonNode g : j.get("itls").get(i)) itlTotal += g.asDouble();
        }
        assertTrue((ttftTotal + itlTotal) * 1000 <= j.get("mean_e2el_ms").asDouble() * 24 + 1e-6, "Σ(ttft + itl) ≤ Σ e2el");
        // every ITL list has output_len - 1 gaps
        for (int i = 0; i < 24; i++) assertEquals(j.get("output_lens").get(i).asInt() - 1, j.get("itls").get(i).size());
        // concurrency cap and round-robin assignment
        assertTrue(maxInFlight.get() <= 4, "in flight " + maxInFlight.get());
        for (String a : List.of("a0", "a1", "a2")) assertEquals(8, perModel.get(a).get(), a);
        assertFalse(perModel.containsKey("base"));
    }

    @Test
    void unknownAdapterFailsWithTheServerMessage() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        var cfg = config(List.of("nope"), ServeBench.Assignment.RANDOM, Double.POSITIVE_INFINITY, 0, 3, 0);
        Map<String, Object> r = ServeBench.run(cfg, new PrintStream(buf, true, StandardCharsets.UTF_8));
        assertEquals(0, r.get("completed"));
        assertEquals(3, r.get("failed"));
        String err = ((List<?>) r.get("errors")).getFirst().toString();
        assertTrue(err.contains("HTTP 404") && err.contains("The model `nope` does not exist."), err);
        assertTrue(buf.toString(StandardCharsets.UTF_8).contains("Failed requests:"));
    }

    @Test
    void poissonArrivalsHaveTheRequestedMeanRate() {
        double[] g = ServeWorkload.arrivalGaps(20000, 50, 1.0, 3);
        double mean = java.util.Arrays.stream(g).average().orElseThrow();
        assertEquals(1 / 50.0, mean, 0.001);
        // burstiness 0.25: same mean, larger spread (coefficient of variation 1/sqrt(shape) = 2)
        double[] b = ServeWorkload.arrivalGaps(20000, 50, 0.25, 3);
        double mb = java.util.Arrays.stream(b).average().orElseThrow();
        assertEquals(1 / 50.0, mb, 0.002);
        double sd = ServeReport.std(b);
        assertEquals(2.0, sd / mb, 0.15);
        assertTrue(java.util.Arrays.stream(ServeWorkload.arrivalGaps(10, Double.POSITIVE_INFINITY, 1, 1)).allMatch(x -> x == 0));
    }

    @Test
    void zipfAssignmentFavoursTheFirstAdapter() {
        var cfg = config(List.of("a0", "a1", "a2", "a3"), ServeBench.Assignment.ZIPF, 1, 0, 4000, 0);
        Map<String, Integer> n = new java.util.HashMap<>();
        for (var p : ServeWorkload.randomDataset(cfg)) n.merge(p.model(), 1, Integer::sum);
        // weights 1, 1/2, 1/3, 1/4 over H4 = 25/12: 48 %, 24 %, 16 %, 12 %
        assertEquals(0.48, n.get("a0") / 4000.0, 0.03);
        assertEquals(0.12, n.get("a3") / 4000.0, 0.03);
    }

    @Test
    void percentilesFollowNumpy() {
        double[] v = {1, 2, 3, 4};
        assertEquals(2.5, ServeReport.percentile(v, 50), 1e-12);
        assertEquals(3.97, ServeReport.percentile(v, 99), 1e-12);
        assertEquals(0, ServeReport.percentile(new double[0], 99));
    }
}
