package dev.bdserve.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A lost rank under {@code --tp-transport mpi}: a stopped rank 1 (SIGSTOP) is caught by rank 0's collective watchdog
 * (503s and error events, /health 503, exit 3); a killed rank 1 (SIGKILL) ends every open stream and the job. And the
 * ranks refuse together an adapter whose files changed between rank 0's check and rank 1's read.
 */
class ServerMpiFaultTest {
    @TempDir Path tmp;

    /** The server under mpirun: the process, rank 0's pid, the base URL and the log. */
    record Job(Process mpirun, long rank0, String base, Path log) implements AutoCloseable {
        long rank1() {
            return mpirun.descendants().filter(h -> h.pid() != rank0 && h.info().command().map(c -> c.endsWith("java")).orElse(false))
                    .mapToLong(ProcessHandle::pid).findFirst().orElseThrow(() -> new AssertionError("no rank-1 java process"));
        }

        String logText() {
            try { return Files.readString(log); } catch (java.io.IOException e) { return "(no log: " + e + ")"; }
        }

        @Override
        public void close() {
            if (mpirun.isAlive()) {
                mpirun.descendants().forEach(ProcessHandle::destroyForcibly);
                mpirun.destroyForcibly();
            }
        }
    }

    Job start(String... extra) throws Exception {
        Path log = tmp.resolve("serve.log");
        Process p = ServerMpiTest.startServe(log, "-Xmx512m", 1, List.of(extra));
        Matcher m = ServerMpiTest.awaitServing(p, log);
        if (m != null) return new Job(p, Long.parseLong(m.group(1)), "http://127.0.0.1:" + m.group(2), log);
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        return fail("the server did not start:\n" + Files.readString(log));
    }

    /** How a stream ended: "done" ([DONE] after a finish), "error" (an error event), or "closed" (the connection broke). */
    record StreamEnd(String how, int chunks, String last) {}

    /** Opens {@code n} long greedy streams; each future completes when its stream ends; {@code started} counts first chunks. */
    static List<CompletableFuture<StreamEnd>> streams(HttpClient http, String base, int n, CountDownLatch started) {
        List<CompletableFuture<StreamEnd>> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String body = "{\"prompt\":\"Once upon a time " + i + "\",\"max_tokens\":480,\"ignore_eos\":true,\"temperature\":0,\"stream\":true}";
            out.add(CompletableFuture.supplyAsync(() -> {
                int chunks = 0;
                String last = "";
                boolean error = false, counted = false;
                try {
                    HttpResponse<java.io.InputStream> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                            .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                            HttpResponse.BodyHandlers.ofInputStream());
                    if (r.statusCode() != 200) {
                        started.countDown();
                        return new StreamEnd(r.statusCode() == 503 ? "error" : "status " + r.statusCode(), 0,
                                "data: " + new String(r.body().readAllBytes(), StandardCharsets.UTF_8));
                    }
                    try (BufferedReader rd = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                        for (String line; (line = rd.readLine()) != null; ) {
                            if (!line.startsWith("data: ")) continue;
                            if (!error) last = line;                // an error event is kept (it is followed by [DONE])
                            if (line.startsWith("data: {\"error\"")) error = true;
                            else if (!line.equals("data: [DONE]")) chunks++;
                            if (!counted) { counted = true; started.countDown(); }
                        }
                    }
                    return new StreamEnd(error ? "error" : last.equals("data: [DONE]") ? "done" : "closed", chunks, last);
                } catch (Exception e) {
                    if (!counted) started.countDown();
                    return new StreamEnd("closed", chunks, String.valueOf(e));
                }
            }, java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()));
        }
        return out;
    }

    /** Whole seconds left until {@code limit} seconds after {@code t0} (nanoTime), at least 0. */
    static long secondsLeft(long t0, int limit) {
        return Math.max(0, limit - TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0));
    }

    static void signal(long pid, String sig) throws Exception {
        Process k = new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).inheritIO().start();
        assertTrue(k.waitFor(10, TimeUnit.SECONDS) && k.exitValue() == 0, "kill -" + sig + " " + pid);
    }

    @Test
    void aStoppedRankIsCaughtByTheWatchdog() throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        try (Job job = start()) {                  // the default --tp-collective-timeout-seconds, 20
            CountDownLatch started = new CountDownLatch(4);
            List<CompletableFuture<StreamEnd>> s = streams(http, job.base(), 4, started);
            assertTrue(started.await(60, TimeUnit.SECONDS), "the streams started");
            // /health is polled from now on: it answers 503 for the two seconds between the failure and the exit
            CompletableFuture<Integer> health = CompletableFuture.supplyAsync(() -> {
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (System.nanoTime() < until) {
                    try {
                        int st = http.send(HttpRequest.newBuilder(URI.create(job.base() + "/health")).timeout(Duration.ofSeconds(10)).build(),
                                HttpResponse.BodyHandlers.ofString()).statusCode();
                        if (st != 200) return st;
                        Thread.sleep(100);
                    } catch (Exception e) {
                        return -1;                                   // gone before a 503 was seen
                    }
                }
                return 0;
            });
            signal(job.rank1(), "STOP");
            long stopped = System.nanoTime();
            // streams of this tiny model are quick: 4 more, opened while rank 1 is stopped, surely meet it
            s = new ArrayList<>(s);
            s.addAll(streams(http, job.base(), 4, new CountDownLatch(4)));
            for (CompletableFuture<StreamEnd> f : s) {
                StreamEnd e = f.get(secondsLeft(stopped, 30), TimeUnit.SECONDS);
                assertTrue(e.how().equals("error") || e.how().equals("done"), e + "\n" + job.logText());
                if (e.how().equals("error")) assertTrue(e.last().contains("\"code\":503"), e.last());
            }
            for (CompletableFuture<StreamEnd> f : s.subList(4, 8)) assertEquals("error", f.join().how(), f.join().toString());
            assertTrue((System.nanoTime() - stopped) / 1e9 < 30, "error events within 30 s of the stop");
            assertEquals(503, health.get(secondsLeft(stopped, 60), TimeUnit.SECONDS), "/health after the failure");
            assertTrue(job.mpirun().waitFor(secondsLeft(stopped, 60), TimeUnit.SECONDS), "the job did not exit within 60 s of the stop:\n" + job.logText());
            assertNotEquals(0, job.mpirun().exitValue(), job.logText());
            assertTrue(job.logText().contains("waited more than 20.0 s for the other ranks"), job.logText());
        }
    }

    @Test
    void aKilledRankEndsEveryStreamAndTheJob(@TempDir Path adapters) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        Path b = TestServer.synthAdapter(adapters.resolve("b"), 12, 0);
        try (Job job = start("--allowed-lora-dir", adapters.toString())) {
            // rank 1 reads other bytes than rank 0 validated: both refuse the adapter, the group goes on
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(job.base() + "/v1/load_lora_adapter"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"lora_name\":\"b\",\"lora_path\":\"" + b + "\"}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            TestServer.synthAdapter(b, 13, 0);   // same shapes, other weights
            r = http.send(HttpRequest.newBuilder(URI.create(job.base() + "/v1/completions")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"b\",\"prompt\":\"Once\",\"max_tokens\":4}")).build(), HttpResponse.BodyHandlers.ofString());
            ServerApiTest.assertError(r, 400, "Failed to load LoRA adapter 'b': adapter b was refused: another rank could not read the same files");
            assertTrue(job.logText().contains("differ on rank 1 from what rank 0 validated"), job.logText());
            r = http.send(HttpRequest.newBuilder(URI.create(job.base() + "/v1/completions")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once\",\"max_tokens\":4}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body() + "\n" + job.logText());

            CountDownLatch started = new CountDownLatch(4);
            List<CompletableFuture<StreamEnd>> s = streams(http, job.base(), 4, started);
            assertTrue(started.await(60, TimeUnit.SECONDS), "the streams started");
            long rank1 = job.rank1();
            List<Boolean> openAtKill = s.stream().map(f -> !f.isDone()).toList();
            long t0 = System.nanoTime();
            signal(rank1, "KILL");
            assertTrue(openAtKill.contains(true), "no stream was open when rank 1 was killed");
            for (int i = 0; i < s.size(); i++) {
                StreamEnd e = s.get(i).get(secondsLeft(t0, 60), TimeUnit.SECONDS);
                // a stream open at the kill ends with an error event or a closed connection, never as if complete
                if (openAtKill.get(i)) assertTrue(e.how().equals("error") || e.how().equals("closed"), e + "\n" + job.logText());
                else assertEquals("done", e.how(), e.toString());
            }
            assertTrue(job.mpirun().waitFor(secondsLeft(t0, 60), TimeUnit.SECONDS), "the job did not exit within 60 s of the kill:\n" + job.logText());
            assertNotEquals(0, job.mpirun().exitValue(), job.logText());
        }
    }
}
