package dev.bdserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * llama.cpp as the peer of {@code bench peer}: node-llama-cpp's prebuilt CPU library, installed outside the repository,
 * run by the script {@code llamacpp_peer.mjs} in a node child process that loads the model once and then times each
 * workload it is sent with its own clock. A child process, so that llama.cpp's threads and memory are its own and a
 * crash inside it ends only that process.
 */
public final class LlamaCppPeer implements AutoCloseable {
    /** The npm packages the peer runs, pinned as in the tests and {@code .ci/run}. */
    public static final String PACKAGES = "node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1";
    private static final String ANSWER = "@peer ";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * What the node side sets up.
     *
     * @param batchTokens     tokens llama.cpp evaluates per batch at most (its n_batch and n_ubatch)
     * @param singleContext   KV cells of the one-sequence context
     * @param batchSequences  sequences of the batch context (0: none)
     * @param batchContext    KV cells per sequence of the batch context
     */
    public record Config(Path model, int threads, int batchTokens, int singleContext, int batchSequences, int batchContext) {}

    /** One single-stream run: seconds from the prompt's evaluation to its first token, and of the tokens decoded after it. */
    public record Single(double prefillSeconds, double decodeSeconds) {}

    private final Path script;
    private final Process process;
    private final BufferedReader out;
    private final Writer in;
    private final Deque<String> log = new ArrayDeque<>();      // the last lines node wrote that were no answers
    private final Map<String, Object> info;

    private LlamaCppPeer(Path root, Path script, Process process) throws IOException {
        this.script = script;
        this.process = process;
        this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        this.in = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread.ofPlatform().daemon().name("llamacpp-peer-stderr").start(() -> pump(process.getErrorStream()));
        JsonNode first = answer();
        Map<String, Object> m = new LinkedHashMap<>();
        first.properties().forEach(e -> m.put(e.getKey(), e.getValue().isNumber() ? e.getValue().numberValue() : e.getValue().asText()));
        m.put("dir", root.toString());
        this.info = m;
    }

    /**
     * The llama.cpp install: {@code $BDSERVE_LLAMACPP}, else {@code llamacpp} beside the repository this code was built
     * in (its {@code target} folder's parent), else {@code ../llamacpp} from the working directory.
     */
    public static Path defaultRoot() {
        String env = System.getenv("BDSERVE_LLAMACPP");
        if (env != null && !env.isBlank()) return Path.of(env).toAbsolutePath().normalize();
        try {
            Path p = Path.of(LlamaCppPeer.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            for (Path d = p; d != null; d = d.getParent())
                if (d.getFileName() != null && d.getFileName().toString().equals("target") && d.getParent() != null)
                    return d.getParent().resolveSibling("llamacpp").toAbsolutePath().normalize();
        } catch (Exception e) {
            // no code source location (an unusual class loader): the working directory's sibling
        }
        return Path.of("../llamacpp").toAbsolutePath().normalize();
    }

    /** How to install the peer into {@code root}. */
    public static String installHint(Path root) {
        return ".ci/run installs it there, or by hand: mkdir -p " + root + " && cd " + root + " && npm install --omit=optional " + PACKAGES;
    }

    /**
     * Starts node on {@code llamacpp_peer.mjs} with the install in {@code root} and waits until it has loaded the model.
     *
     * @throws IllegalArgumentException when the install or node is missing (with how to get them)
     * @throws UncheckedIOException     when node fails to load the model or set up its contexts
     */
    public static LlamaCppPeer start(Path root, Config c) {
        Path index = root.resolve("node_modules/node-llama-cpp/dist/index.js");
        if (!Files.isRegularFile(index))
            throw new IllegalArgumentException("llama.cpp (node-llama-cpp) not found: " + index + " is missing. Set BDSERVE_LLAMACPP (or "
                    + "--llamacpp) to its install; " + installHint(root));
        Path script;
        try (InputStream s = LlamaCppPeer.class.getResourceAsStream("llamacpp_peer.mjs")) {
            if (s == null) throw new IllegalStateException("llamacpp_peer.mjs is not on the class path");
            script = Files.createTempFile("bdserve-llamacpp-peer", ".mjs");
            Files.copy(s, script, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the llama.cpp peer script to a temporary file: " + e.getMessage(), e);
        }
        Process p;
        try {
            Map<String, Object> cfg = new LinkedHashMap<>();
            cfg.put("model", c.model().toAbsolutePath().toString());
            cfg.put("threads", c.threads());
            cfg.put("batchTokens", c.batchTokens());
            cfg.put("singleContext", c.singleContext());
            cfg.put("batchSequences", c.batchSequences());
            cfg.put("batchContext", c.batchContext());
            p = new ProcessBuilder("node", script.toString(), root.toString(), JSON.writeValueAsString(cfg)).start();
        } catch (IOException e) {
            deleteQuietly(script);
            throw new IllegalArgumentException("cannot start node (Node.js ≥ 18 on the PATH runs llama.cpp's side): " + e.getMessage(), e);
        }
        try {
            return new LlamaCppPeer(root, script, p);
        } catch (IOException | RuntimeException e) {
            p.destroyForcibly();
            deleteQuietly(script);
            if (e instanceof RuntimeException r) throw r;
            throw new UncheckedIOException("llama.cpp peer: " + e.getMessage(), (IOException) e);
        }
    }

    /** What node reported about the library: package, llama.cpp release, build type, CPU variant, system info, contexts. */
    public Map<String, Object> info() { return info; }

    /** A fresh sequence: {@code prompt} evaluated to its first greedy token, then {@code decode} more tokens. */
    public Single single(int[] prompt, int decode) {
        Map<String, Object> cmd = new LinkedHashMap<>();
        cmd.put("op", "single");
        cmd.put("prompt", prompt);
        cmd.put("decode", decode);
        JsonNode a = send(cmd);
        return new Single(a.path("prefill_s").asDouble(), a.path("decode_s").asDouble());
    }

    /** Every prompt on its own fresh sequence, all at once, {@code gen} tokens each (the first from the prompt); the wall seconds. */
    public double batch(int[][] prompts, int gen) {
        Map<String, Object> cmd = new LinkedHashMap<>();
        cmd.put("op", "batch");
        cmd.put("prompts", prompts);
        cmd.put("gen", gen);
        return send(cmd).path("seconds").asDouble();
    }

    private JsonNode send(Map<String, Object> cmd) {
        try {
            in.write(JSON.writeValueAsString(cmd));
            in.write('\n');
            in.flush();
            return answer();
        } catch (IOException e) {
            throw failure("llama.cpp peer (node) stopped taking commands: " + e.getMessage(), e);
        }
    }

    /** The next answer line; other lines are kept as log. */
    private JsonNode answer() throws IOException {
        for (String line; (line = out.readLine()) != null; ) {
            if (!line.startsWith(ANSWER)) {
                remember(line);
                continue;
            }
            JsonNode a = JSON.readTree(line.substring(ANSWER.length()));
            if (a.has("error")) throw failure("llama.cpp peer failed: " + a.path("error").asText(), null);
            return a;
        }
        throw failure("llama.cpp peer (node) exited without answering", null);
    }

    private UncheckedIOException failure(String message, IOException cause) {
        String tail;
        synchronized (log) { tail = String.join("\n", log); }
        return new UncheckedIOException(message + (tail.isEmpty() ? "" : "\nnode's output:\n" + tail), cause != null ? cause : new IOException(message));
    }

    private void pump(InputStream s) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(s, StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) remember(line);
        } catch (IOException e) {
            // the process is gone; its last lines are already kept
        }
    }

    private void remember(String line) {
        synchronized (log) {
            if (log.size() == 40) log.removeFirst();
            log.addLast(line);
        }
    }

    /** Asks node to quit, then ends it if it has not within 10 s; deletes the script. */
    @Override
    public void close() {
        try {
            if (process.isAlive()) {
                in.write("{\"op\":\"quit\"}\n");
                in.flush();
            }
        } catch (IOException e) {
            // already gone
        }
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        deleteQuietly(script);
    }

    private static void deleteQuietly(Path p) {
        try { Files.deleteIfExists(p); } catch (IOException ignored) { /* a temporary file */ }
    }
}
