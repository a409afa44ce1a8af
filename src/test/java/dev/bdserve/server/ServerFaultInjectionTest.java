package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.PoisonRunner;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.SynthTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 29's acceptance: 64 concurrent greedy streams over 8 adapters on a tiny synthetic model while, at random
 * moments, poisoned requests (NaN, +Inf, all −Inf logits from a test runner), malformed adapter loads, unloads of
 * adapters not in use, oversized bodies and client disconnects arrive. Every stream gets exactly the text it gets
 * alone; every fault gets its own answer; the server stays up and healthy.
 */
class ServerFaultInjectionTest {
    static final int STREAMS = 64, ADAPTERS = 8;
    static final List<String> PROMPTS = List.of("Once upon a time", "The little dog", "Lily and Tom went", "One day, a bird");
    static final long MAX_BODY = 64 << 10;

    @TempDir Path tmp;

    @Test
    void streamsKeepTheirTextWhileFaultsArrive() throws Exception {
        LlamaConfig shape = ModelShapes.get("tiny");
        Path model = tmp.resolve("model");
        HfModelWriter.write(model, new SynthModel(shape, DType.F32, 29), DType.F32);
        SynthTokenizer.write(model, shape.vocabSize());
        Path allowed = Files.createDirectories(tmp.resolve("adapters"));
        List<String> names = new ArrayList<>();
        for (int i = 0; i < ADAPTERS; i++) names.add("lora" + i);
        for (String k : List.of("nan", "inf", "dead")) names.add("poison-" + k);
        for (int i = 0; i < 4; i++) names.add("spare" + i);
        for (int i = 0; i < names.size(); i++)
            new SynthAdapter(8, i % 2 == 0 ? 0 : 2, SynthAdapter.allModules(), DType.F32, 16, false, 0.5, 300 + i)
                    .write(allowed.resolve(names.get(i)), shape, "tiny");
        Path malformed = Files.createDirectories(allowed.resolve("malformed"));
        Files.copy(allowed.resolve("lora0/adapter_model.safetensors"), malformed.resolve("adapter_model.safetensors"));
        Files.writeString(malformed.resolve("adapter_config.json"), "{\"r\": 8, \"target_modules\": [\"q_proj\"]");   // truncated JSON

        EngineConfig ec = new EngineConfig(64, 512, 8, 32, 64, 32L << 20, 16, 4096, true);
        try (TestServer ts = new TestServer(model, 1, LoraSharding.AUTO, ec,
                o -> o.withAllowedLoraDirs(List.of(allowed)).withLimits(MAX_BODY, 1 << 16, 256),
                r -> new PoisonRunner(r))) {
            for (String n : names) assertEquals(200, load(ts, n, allowed.resolve(n)).statusCode(), n);

            // every stream's text alone, one request at a time
            Map<String, String> alone = new HashMap<>();
            for (int i = 0; i < STREAMS; i++) if (!alone.containsKey(key(i))) alone.put(key(i), text(ts.post("/v1/completions", body(i, false))));

            Random rnd = new Random(29);
            ConcurrentLinkedQueue<String> faultErrors = new ConcurrentLinkedQueue<>();
            AtomicBoolean running = new AtomicBoolean(true);
            ExecutorService vt = Executors.newVirtualThreadPerTaskExecutor();
            List<CompletableFuture<String>> streams = new ArrayList<>();
            for (int i = 0; i < STREAMS; i++) {
                final int k = i;
                streams.add(CompletableFuture.supplyAsync(() -> streamedText(ts, body(k, true)), vt));
            }
            CompletableFuture<Integer> faults = CompletableFuture.supplyAsync(() -> {
                int n = 0, spare = 0;
                while (running.get() || n < 10) {
                    try {
                        Thread.sleep(rnd.nextInt(30));
                    } catch (InterruptedException e) {
                        break;
                    }
                    switch (rnd.nextInt(5)) {
                        case 0 -> {                       // a poisoned request: it fails alone
                            String kind = List.of("nan", "inf", "dead").get(rnd.nextInt(3));
                            HttpResponse<String> r = ts.post("/v1/completions", "{\"model\":\"poison-" + kind
                                    + "\",\"prompt\":\"Once upon a time\",\"max_tokens\":30,\"temperature\":0,\"ignore_eos\":true,\"stream\":" + rnd.nextBoolean() + "}");
                            if (!(r.statusCode() == 500 || r.statusCode() == 200 && r.body().contains("data: {\"error\"")))
                                faultErrors.add("poison-" + kind + " was not failed: " + r.statusCode() + " " + r.body());
                        }
                        case 1 -> {                       // a malformed adapter: 400 naming the file
                            HttpResponse<String> r = load(ts, "malformed" + n, malformed);
                            if (r.statusCode() != 400 || !r.body().contains("adapter_config.json: not valid JSON"))
                                faultErrors.add("malformed load: " + r.statusCode() + " " + r.body());
                        }
                        case 2 -> {                       // an unload of an adapter no request uses
                            if (spare < 4) {
                                HttpResponse<String> r = ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"spare" + spare++ + "\"}");
                                if (r.statusCode() != 200) faultErrors.add("unload: " + r.statusCode() + " " + r.body());
                            }
                        }
                        case 3 -> {                       // an oversized body: 413
                            String pad = "x".repeat((int) MAX_BODY + rnd.nextInt(1000));
                            HttpResponse<String> r = ts.post("/v1/completions", "{\"prompt\":\"" + pad + "\",\"max_tokens\":4}");
                            if (r.statusCode() != 413) faultErrors.add("oversized body: " + r.statusCode());
                        }
                        default -> disconnect(ts, rnd.nextInt(STREAMS), faultErrors);
                    }
                    n++;
                }
                return n;
            }, vt);

            List<String> failures = new ArrayList<>();
            for (int i = 0; i < STREAMS; i++) {
                try {
                    String got = streams.get(i).get(120, TimeUnit.SECONDS);   // liveness bound
                    if (!got.equals(alone.get(key(i)))) failures.add("stream " + i + " (" + key(i) + "): '" + got + "' != alone '" + alone.get(key(i)) + "'");
                } catch (Exception e) {
                    failures.add("stream " + i + " failed: " + e);
                }
            }
            running.set(false);
            int injected = faults.get(120, TimeUnit.SECONDS);
            vt.shutdownNow();
            assertEquals(List.of(), failures.subList(0, Math.min(5, failures.size())), failures.size() + " failures");
            assertEquals(List.of(), List.copyOf(faultErrors));
            assertTrue(injected >= 10, injected + " faults");
            assertTrue(ts.engine.healthy());
            assertEquals(200, ts.get("/health").statusCode());
            assertEquals(text(ts.post("/v1/completions", body(0, false))), alone.get(key(0)), "the server serves on");
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);   // disconnected requests are reaped
            while (ts.engine.stats().running() + ts.engine.stats().waiting() > 0 && System.nanoTime() < until) Thread.sleep(10);
            assertEquals(0, ts.engine.stats().running() + ts.engine.stats().waiting());
        }
    }

    static String key(int i) { return "lora" + i % ADAPTERS + "|" + PROMPTS.get(i / ADAPTERS % PROMPTS.size()) + "|" + (12 + i % 5); }

    static String body(int i, boolean stream) {
        return "{\"model\":\"lora" + i % ADAPTERS + "\",\"prompt\":\"" + PROMPTS.get(i / ADAPTERS % PROMPTS.size()) + "\",\"max_tokens\":"
                + (12 + i % 5) + ",\"temperature\":0,\"stream\":" + stream + "}";
    }

    static HttpResponse<String> load(TestServer ts, String name, Path dir) {
        return ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"" + name + "\",\"lora_path\":\"" + dir + "\"}");
    }

    static String text(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        try {
            return ServerApiTest.JSON.readTree(r.body()).at("/choices/0/text").asText();
        } catch (java.io.IOException e) {
            throw new AssertionError(r.body(), e);
        }
    }

    /** A streaming request's text, assembled from its events; an error event or a bad status fails it. */
    static String streamedText(TestServer ts, String body) {
        try {
            HttpResponse<java.util.stream.Stream<String>> r = ts.http.send(HttpRequest.newBuilder(URI.create(ts.base() + "/v1/completions"))
                    .timeout(Duration.ofSeconds(120)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofLines());
            if (r.statusCode() != 200) throw new AssertionError("status " + r.statusCode());
            StringBuilder sb = new StringBuilder();
            for (String line : (Iterable<String>) r.body()::iterator) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                JsonNode j = ServerApiTest.JSON.readTree(line.substring(6));
                if (j.has("error")) throw new AssertionError("error event: " + line);
                sb.append(j.at("/choices/0/text").asText());
            }
            return sb.toString();
        } catch (java.io.IOException | InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** A client that opens a stream and goes away after its first bytes. */
    static void disconnect(TestServer ts, int i, ConcurrentLinkedQueue<String> errors) {
        byte[] b = body(i, true).replace("\"max_tokens\":" + (12 + i % 5), "\"max_tokens\":200").getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", ts.server.port()), 5_000);
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + b.length + "\r\n\r\n")
                    .getBytes(StandardCharsets.ISO_8859_1));
            out.write(b);
            out.flush();
            InputStream in = s.getInputStream();
            if (in.read(new byte[64]) < 0) errors.add("disconnect: no answer at all");
        } catch (java.io.IOException e) {
            errors.add("disconnect: " + e);
        }
    }
}
