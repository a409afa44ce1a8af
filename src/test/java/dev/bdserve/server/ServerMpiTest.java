package dev.bdserve.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.bdserve.TestModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code bdserve serve --tp 2 --tp-transport mpi} as two processes under mpirun: a smaller concurrent
 * streaming run over the base model and adapters (one loaded through the API) matches the greedy texts,
 * and SIGTERM to rank 0 drains and ends mpirun with 0.
 */
class ServerMpiTest {
    static final Pattern SERVING = Pattern.compile("pid (\\d+)\\) on http://127\\.0\\.0\\.1:(\\d+)/v1");

    @TempDir Path tmp;

    @Test
    void concurrentStreamsOverMpiTp2AndSigtermDrains() throws Exception {
        Path a = TestServer.synthAdapter(tmp.resolve("adapters/a"), 11, 0);
        TestServer.synthAdapter(tmp.resolve("adapters/b"), 12, 2);
        Path log = tmp.resolve("serve.log");
        Process p = startServe(log, "-Xmx768m", 2, List.of("--lora-modules", "a=" + a, "--allowed-lora-dir", tmp.resolve("adapters").toString()));
        try {
            Matcher m = awaitServing(p, log);
            assertNotNull(m, "the server did not start:\n" + Files.readString(log));
            long rank0 = Long.parseLong(m.group(1));
            String base = "http://127.0.0.1:" + m.group(2);

            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/load_lora_adapter"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"lora_name\":\"b\",\"lora_path\":\"" + tmp.resolve("adapters/b") + "\"}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());

            OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(base + "/v1").apiKey("none").maxRetries(0).timeout(Duration.ofSeconds(120)).build();
            List<String> models = List.of(TestServer.MODEL, "a", "b");
            List<String> prompts = List.of("Once upon a time", "The little dog");
            Map<String, String> expected = new HashMap<>();
            for (String mo : models)
                for (String pr : prompts)
                    expected.put(mo + "|" + pr, client.completions().create(params(mo, pr)).choices().get(0).text());
            int n = 24;
            ExecutorService pool = Executors.newFixedThreadPool(n);
            List<Future<String>> fs = new ArrayList<>();
            List<String> keys = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String mo = models.get(i % 3), pr = prompts.get((i / 3) % 2);
                keys.add(mo + "|" + pr);
                fs.add(pool.submit(() -> {
                    StringBuilder sb = new StringBuilder();
                    try (StreamResponse<Completion> s = client.completions().createStreaming(params(mo, pr))) {
                        s.stream().forEach(c -> c.choices().forEach(ch -> sb.append(ch.text())));
                    }
                    return sb.toString();
                }));
            }
            for (int i = 0; i < n; i++) assertEquals(expected.get(keys.get(i)), fs.get(i).get(120, TimeUnit.SECONDS), "request " + i + " " + keys.get(i));
            pool.shutdownNow();

            ProcessHandle.of(rank0).orElseThrow().destroy();   // SIGTERM to rank 0: drain, shut the group down, exit 0
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "mpirun did not stop:\n" + Files.readString(log));
            assertEquals(0, p.exitValue(), Files.readString(log));
            assertTrue(Files.readString(log).contains("bdserve: stopped"));
        } finally {
            if (p.isAlive()) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
            }
        }
    }

    private static CompletionCreateParams params(String model, String prompt) {
        return CompletionCreateParams.builder().model(model).prompt(prompt).maxTokens(24).temperature(0).build();
    }

    /**
     * Starts {@code bdserve serve --tp 2 --tp-transport mpi} on stories260K as two processes under mpirun, its output
     * in {@code log}: {@code heap} is each rank's -Xmx, {@code threads} its threads, {@code extra} further serve options.
     */
    static Process startServe(Path log, String heap, int threads, List<String> extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(mpirun(), "-np", "2", "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self," + sharedMemoryBtl()));
        cmd.addAll(dev.bdserve.ChildJvm.mainCommand(heap));
        cmd.addAll(List.of("serve", "--model", TestModels.stories260K().toString(), "--tp", "2", "--tp-transport", "mpi",
                "--served-model-name", TestServer.MODEL, "--threads", Integer.toString(threads), "--port", "0", "--kv-cache-gb", "0.0625"));
        cmd.addAll(extra);
        cmd.add("--disable-log-requests");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        Map<String, String> env = pb.environment();
        env.put("OMPI_ALLOW_RUN_AS_ROOT", "1");
        env.put("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        env.put("OMPI_MCA_opal_signal", "");
        env.put("OMPI_MCA_pml", "ob1");
        env.put("UCX_ERROR_SIGNALS", "");
        env.put("BDSERVE_MODELS", TestModels.root().toString());
        return pb.start();
    }

    /** Waits up to 120 s for rank 0's "serving" line in {@code log}: its match (group 1 rank 0's pid, group 2 the port), or null. */
    static Matcher awaitServing(Process p, Path log) throws Exception {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < until && p.isAlive()) {
            Matcher m = SERVING.matcher(Files.readString(log));
            if (m.find()) return m;
            Thread.sleep(200);
        }
        return null;
    }

    static String mpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(File.pathSeparator)) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, "mpirun");
            if (Files.isExecutable(p)) return p.toString();
        }
        return fail("mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
    }

    /** "vader" on Open MPI 4.x, "sm" from 5.0. */
    static String sharedMemoryBtl() throws Exception {
        Process p = new ProcessBuilder(mpirun(), "--version").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(30, TimeUnit.SECONDS);
        Matcher m = Pattern.compile("Open MPI\\)? ?(\\d+)\\.").matcher(out);
        assertTrue(m.find(), out);
        return Integer.parseInt(m.group(1)) >= 5 ? "sm" : "vader";
    }
}
