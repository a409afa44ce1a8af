package dev.bdserve.server;

import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * 200 concurrent streaming requests over 8 synthetic adapters and the base model, through the OpenAI
 * client: zero errors, none hung, every streamed text equal to the non-streamed greedy text of the same
 * request (computed alone beforehand). At TP 2, adapters are loaded and unloaded through the API meanwhile.
 */
class ServerLoadTest {
    static final int REQUESTS = 200, ADAPTERS = 8;
    static final List<String> PROMPTS = List.of("Once upon a time", "The little dog", "Lily and Tom went", "One day, a bird");

    @TempDir Path tmp;

    @ParameterizedTest(name = "tp {0}")
    @ValueSource(ints = {1, 2})
    void concurrentStreamsMatchGreedyText(int tp) throws Exception {
        run(tp, false);
    }

    @Test
    void adaptersLoadedAndUnloadedDuringTheLoadAtTp2() throws Exception {
        run(2, true);
    }

    private void run(int tp, boolean churn) throws Exception {
        Path allowed = Files.createDirectories(tmp.resolve("adapters"));
        for (int i = 0; i < ADAPTERS; i++) TestServer.synthAdapter(allowed.resolve("lora" + i), 100 + i, i % 2 == 0 ? 0 : 2);
        for (int i = 0; i < 3; i++) TestServer.synthAdapter(allowed.resolve("churn" + i), 200 + i, 0);
        try (TestServer ts = new TestServer(tp, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(allowed)))) {
            for (int i = 0; i < ADAPTERS; i++) {
                HttpResponse<String> r = ts.post("/v1/load_lora_adapter",
                        "{\"lora_name\":\"lora" + i + "\",\"lora_path\":\"" + allowed.resolve("lora" + i) + "\"}");
                assertEquals(200, r.statusCode(), r.body());
            }
            List<String> models = new ArrayList<>();
            models.add(TestServer.MODEL);
            for (int i = 0; i < ADAPTERS; i++) models.add("lora" + i);
            OpenAIClient client = ts.client();

            // references, one request at a time
            Map<String, String> expected = new HashMap<>();
            for (String m : models)
                for (String p : PROMPTS)
                    expected.put(m + "|" + p, client.completions().create(params(m, p, false)).choices().get(0).text());
            assertNotEquals(expected.get(TestServer.MODEL + "|" + PROMPTS.get(0)), expected.get("lora0|" + PROMPTS.get(0)));

            AtomicBoolean loadRunning = new AtomicBoolean(true);
            ConcurrentLinkedQueue<String> churnErrors = new ConcurrentLinkedQueue<>();
            AtomicInteger churnCycles = new AtomicInteger();
            Thread churner = Thread.ofPlatform().name("churn").start(() -> {
                int k = 0;
                while (churn && loadRunning.get()) {
                    String name = "churn" + (k++ % 3);
                    HttpResponse<String> r = ts.post("/v1/load_lora_adapter",
                            "{\"lora_name\":\"" + name + "\",\"lora_path\":\"" + allowed.resolve(name) + "\"}");
                    if (r.statusCode() != 200) churnErrors.add("load " + name + ": " + r.body());
                    HttpResponse<String> g = ts.post("/v1/completions", "{\"model\":\"" + name + "\",\"prompt\":\"Once\",\"max_tokens\":4}");
                    if (g.statusCode() != 200) churnErrors.add("generate " + name + ": " + g.body());
                    r = ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"" + name + "\"}");
                    if (r.statusCode() != 200) churnErrors.add("unload " + name + ": " + r.body());
                    churnCycles.incrementAndGet();
                }
            });

            ExecutorService pool = Executors.newFixedThreadPool(REQUESTS);
            List<Future<String>> futures = new ArrayList<>();
            List<String> keys = new ArrayList<>();
            for (int i = 0; i < REQUESTS; i++) {
                String m = models.get(i % models.size()), p = PROMPTS.get((i / models.size()) % PROMPTS.size());
                keys.add(m + "|" + p);
                futures.add(pool.submit(() -> {
                    StringBuilder sb = new StringBuilder();
                    try (StreamResponse<Completion> s = client.completions().createStreaming(params(m, p, true))) {
                        s.stream().forEach(c -> c.choices().forEach(ch -> sb.append(ch.text())));
                    }
                    return sb.toString();
                }));
            }
            List<String> failures = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
            for (int i = 0; i < REQUESTS; i++) {
                try {
                    String got = futures.get(i).get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                    if (!got.equals(expected.get(keys.get(i)))) failures.add("request " + i + " (" + keys.get(i) + "): streamed '" + got + "' != '" + expected.get(keys.get(i)) + "'");
                } catch (java.util.concurrent.TimeoutException e) {
                    failures.add("request " + i + " hung");
                } catch (java.util.concurrent.ExecutionException e) {
                    failures.add("request " + i + " failed: " + e.getCause());
                }
            }
            loadRunning.set(false);
            churner.join(60_000);
            pool.shutdownNow();
            assertEquals(List.of(), failures.subList(0, Math.min(5, failures.size())), failures.size() + " failures");
            if (churn) {
                assertEquals(List.of(), List.copyOf(churnErrors));
                assertTrue(churnCycles.get() >= 1, "no load/unload cycle ran during the load");
            }
            // a stream ends when its last chunk is sent, which can precede the end of the engine step that finished
            // it: wait (bounded) for that step, then nothing may be left running
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (ts.engine.stats().running() != 0 && System.nanoTime() < until) Thread.sleep(5);
            assertEquals(0, ts.engine.stats().running());
        }
    }

    private static CompletionCreateParams params(String model, String prompt, boolean stream) {
        return CompletionCreateParams.builder().model(model).prompt(prompt).maxTokens(32).temperature(0).build();
    }
}
