package dev.bdserve.cli;

import dev.bdserve.engine.Engine;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.engine.Warmup;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.parallel.FailStop;
import dev.bdserve.parallel.TpGroupException;
import dev.bdserve.server.ChatTemplate;
import dev.bdserve.server.ConnectionLimits;
import dev.bdserve.server.OpenAiServer;
import dev.bdserve.server.ServingEngine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

/** {@code ./bdserve serve}: the OpenAI-compatible multi-LoRA server (vLLM's flags where they exist). */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve the model and its LoRA adapters over an OpenAI-compatible HTTP API (vLLM's routes).",
                "Requests pick an adapter with the \"model\" field. See docs/serving.md."})
public final class ServeCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8000", description = "Port (default: ${DEFAULT-VALUE}; 0 picks a free one).")
    int port;

    @Option(names = "--api-key", description = "Require 'Authorization: Bearer KEY' on /v1/* (default: $BDSERVE_API_KEY if set).")
    String apiKey;

    @Option(names = "--served-model-name", description = "The base model's id in the API (default: the --model value).")
    String servedModelName;

    @Option(names = "--lora-modules", arity = "1..*", paramLabel = "NAME=PATH",
            description = "Adapters to serve from the start (default: every adapter folder under the repository's adapters/ that fits the model).")
    List<String> loraModules = new ArrayList<>();

    @Option(names = "--allowed-lora-dir", paramLabel = "DIR",
            description = "Let /v1/load_lora_adapter read adapters under DIR (repeatable). Without it run-time loading is disabled.")
    List<Path> allowedLoraDirs = new ArrayList<>();

    @Option(names = "--max-loras", defaultValue = "8", description = "Distinct adapters in one step at most (default: ${DEFAULT-VALUE}).")
    int maxLoras;

    @Option(names = "--max-cpu-loras", defaultValue = "32", description = "Adapters resident in memory at most (default: ${DEFAULT-VALUE}).")
    int maxCpuLoras;

    @Option(names = "--max-lora-rank", defaultValue = "64", description = "Largest adapter rank accepted (default: ${DEFAULT-VALUE}).")
    int maxLoraRank;

    @Option(names = "--max-registered-loras", defaultValue = "256",
            description = "Adapters loaded (resident or not) at most; more loads get 400 (default: ${DEFAULT-VALUE}).")
    int maxRegisteredLoras;

    @Option(names = "--max-registered-lora-mb", defaultValue = "8192",
            description = "MiB of weights of all loaded adapters at most; a load beyond it gets 400 (default: ${DEFAULT-VALUE}).")
    long maxRegisteredLoraMb;

    @Option(names = "--max-num-seqs", defaultValue = "256", description = "Sequences in the running batch at most (default: ${DEFAULT-VALUE}).")
    int maxNumSeqs;

    @Option(names = "--max-num-batched-tokens", defaultValue = "2048", description = "Tokens per step at most (default: ${DEFAULT-VALUE}).")
    int maxBatchedTokens;

    @Option(names = "--max-waiting", defaultValue = "4096", description = "Waiting requests at most; more get 429 (default: ${DEFAULT-VALUE}).")
    int maxWaiting;

    @Option(names = "--kv-cache-gb", defaultValue = "1", description = "KV cache memory per rank, GiB (default: ${DEFAULT-VALUE}).")
    double kvCacheGb;

    @Option(names = "--block-size", defaultValue = "16", description = "Tokens per KV block (default: ${DEFAULT-VALUE}).")
    int blockSize;

    @Option(names = "--enable-prefix-caching", negatable = true, defaultValue = "true", fallbackValue = "true", description = "Share KV blocks of identical prefixes (default: on).")
    boolean prefixCaching;

    @Option(names = "--chat-template", paramLabel = "FILE", description = "A Jinja chat template overriding tokenizer_config.json's.")
    Path chatTemplate;

    @Option(names = "--tool-call-parser", paramLabel = "FORMAT", defaultValue = "auto",
            description = "How tool calls are read from the output: llama3_json, hermes, mistral, or auto: from the chat template (default: ${DEFAULT-VALUE}).")
    String toolCallParser;

    @Option(names = "--shutdown-grace-seconds", defaultValue = "30", description = "On SIGTERM, how long in-flight requests may finish (default: ${DEFAULT-VALUE}).")
    int shutdownGrace;

    @Option(names = "--unload-wait-seconds", defaultValue = "30",
            description = "How long unloading an adapter waits for its running requests before cancelling them (default: ${DEFAULT-VALUE}).")
    int unloadWait;

    @Option(names = "--max-body-mb", defaultValue = "8", description = "Largest request body, MiB (default: ${DEFAULT-VALUE}; larger ones get 413).")
    int maxBodyMb;

    @Option(names = "--max-prompt-chars", defaultValue = "1048576", description = "Longest text prompt in characters (default: ${DEFAULT-VALUE}).")
    int maxPromptChars;

    @Option(names = "--show-model-paths", description = "Show the model's and adapters' file paths as \"root\" in /v1/models (default: their ids).")
    boolean showModelPaths;

    @Option(names = "--max-connections", defaultValue = "1024",
            description = "Open HTTP connections at most; beyond it the longest-idle one is closed (default: ${DEFAULT-VALUE}).")
    int maxConnections;

    @Option(names = "--http-idle-timeout-seconds", defaultValue = "60",
            description = "How long a connection may idle or take to send a request's headers (default: ${DEFAULT-VALUE}).")
    int httpIdleTimeout;

    @Option(names = "--http-body-timeout-seconds", defaultValue = "60",
            description = "How long a request may take to send its body (default: ${DEFAULT-VALUE}).")
    int httpBodyTimeout;

    @Option(names = "--tp-collective-timeout-seconds", defaultValue = "20",
            description = "Under --tp-transport mpi: a collective that waits longer for the other ranks fails the server (503, exit 3) (default: ${DEFAULT-VALUE}).")
    double collectiveTimeout;

    @Option(names = "--disable-log-requests", description = "No access log lines on stderr.")
    boolean noAccessLog;

    @Option(names = "--warmup-streams", defaultValue = "16",
            description = "Concurrent generations run over the base model and the start-up adapters before serving, so the "
                    + "first clients do not wait on the JIT; 0 skips it (default: ${DEFAULT-VALUE}, at most --max-num-seqs).")
    int warmupStreams;

    private volatile int exitCode;
    private final java.util.concurrent.atomic.AtomicBoolean stopping = new java.util.concurrent.atomic.AtomicBoolean();

    @Override
    public Integer call() throws Exception {
        PrintStream err = System.err;
        ChatTemplate.plain().withToolCallParser(toolCallParser);      // an unknown format fails before the model loads
        EngineConfig ec = new EngineConfig(maxNumSeqs, maxBatchedTokens, maxLoras, maxCpuLoras, maxLoraRank,
                (long) (kvCacheGb * (1L << 30)), blockSize, maxWaiting, prefixCaching, maxRegisteredLoras, maxRegisteredLoraMb << 20);
        TpGroup.Options go = modelOptions.groupOptions().withKvCache(ec.kvCacheBytes(), ec.blockSize());
        List<String[]> modules = adapterModules();
        ModelOptions.Loaded m = modelOptions.load(go, Duration.ofMillis((long) (collectiveTimeout * 1000)));
        Engine engine = new Engine(m.runner(), m.tokenizer(), ec);
        if (m.watchdog() != null)                   // a hung or lost rank: every request gets its 503 now, then fail-stop
            m.watchdog().onStall(why -> {
                err.println("bdserve: " + why);
                engine.fail(new TpGroupException(why));
            });
        ServingEngine se = ServingEngine.of(engine);
        try {
            registerStartupAdapters(se, modules, loraModules.isEmpty(), err);
        } catch (RuntimeException e) {
            engine.close();
            m.close();
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        if (warmupStreams < 0) throw new IllegalArgumentException("--warmup-streams must be ≥ 0, got " + warmupStreams);
        if (warmupStreams > 0) {
            Warmup.Report w = Warmup.run(engine, se.adapters().stream().map(dev.bdserve.engine.AdapterInfo::name).toList(),
                    Math.min(warmupStreams, maxNumSeqs), 32);
            err.println("bdserve: warm-up: " + w.streams() + " streams, " + w.tokens() + " tokens in " + w.millis() + " ms"
                    + (w.failure() == null ? "" : " (a warm-up request failed: " + w.failure() + ")"));
        }
        String name = servedModelName != null ? servedModelName : modelOptions.model;
        String key = apiKey != null ? apiKey : System.getenv("BDSERVE_API_KEY");
        ChatTemplate template = ChatTemplate.forModel(m.path(), chatTemplate).withToolCallParser(toolCallParser);
        if (template.parseError() != null) err.println("bdserve: warning: " + template.parseError() + "; chat requests will fail with 400");
        OpenAiServer.Options so = new OpenAiServer.Options(host, port, key == null || key.isEmpty() ? null : key, name,
                m.path().toString(), allowedLoraDirs, (long) maxBodyMb << 20, maxPromptChars, 256, Duration.ofSeconds(unloadWait),
                template, noAccessLog ? null : err, showModelPaths,
                new ConnectionLimits(maxConnections, Duration.ofSeconds(httpIdleTimeout), Duration.ofSeconds(httpBodyTimeout)));
        OpenAiServer server = new OpenAiServer(se, so).start();
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM / SIGINT: stop admitting, let in-flight requests finish within the grace period, exit 0
        // (or the fail-stop code when the engine broke). halt keeps the JVM's 143 from replacing our code.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);   // from here on the engine stopping is no failure
            err.println("bdserve: draining (grace " + shutdownGrace + " s)");
            server.stopAdmitting();
            se.shutdown(Duration.ofSeconds(shutdownGrace));
            server.awaitIdle(Duration.ofSeconds(5));   // let the last chunks and [DONE] go out
            server.close();
            m.close();
            err.println("bdserve: stopped");
            err.flush();
            Runtime.getRuntime().halt(exitCode);
        }, "bdserve-shutdown"));
        // Fail-stop: a lost TP rank breaks the engine; its in-flight requests get 503 and the process exits non-zero.
        Thread.ofPlatform().daemon().name("bdserve-health").start(() -> {
            while (se.healthy() && !stopping.get()) {
                try { Thread.sleep(200); } catch (InterruptedException e) { return; }
            }
            if (!stopping.compareAndSet(false, true)) return;   // a drain closed the engine
            exitCode = 3;
            err.println("bdserve: the engine failed (a tensor-parallel rank was lost?): answering 503 and exiting");
            server.stopAdmitting();
            try { Thread.sleep(2_000); } catch (InterruptedException ignored) { /* exiting */ }
            // not System.exit: the shutdown hook's drain and MPI_Finalize would wait forever for a hung rank
            err.flush();
            FailStop.exitNow(3);
        });
        err.println("bdserve: serving " + name + " (" + m.path() + ", tp " + m.runner().tpSize() + ", kernels " + m.runner().kernels() + ", " + se.adapters().size()
                + " adapters, pid " + ProcessHandle.current().pid() + ") on http://" + host + ":" + server.port() + "/v1");
        stopped.await();
        return 0;
    }

    /**
     * Registers the adapters to serve from the start ({NAME, PATH} pairs). An adapter asked for with --lora-modules
     * that fails to load stops the start (its message is thrown); a {@code shipped} one (the repository's demo
     * adapters, trained for the default model) that does not fit the served model is skipped with a note on
     * {@code err}. Returns how many were registered.
     */
    static int registerStartupAdapters(ServingEngine se, List<String[]> modules, boolean shipped, PrintStream err) {
        int n = 0;
        for (String[] nm : modules) {
            try {
                se.registerAdapter(nm[0], Path.of(nm[1]).toAbsolutePath().normalize(), false);
                err.println("bdserve: adapter " + nm[0] + " from " + nm[1]);
                n++;
            } catch (RuntimeException e) {
                if (!shipped) throw e;
                err.println("bdserve: not serving shipped adapter " + nm[0] + ": " + e.getMessage());
            }
        }
        return n;
    }

    /** --lora-modules, or every adapter folder under the repository's adapters/ when none are given. */
    private List<String[]> adapterModules() {
        List<String[]> out = new ArrayList<>();
        for (String s : loraModules) {
            int eq = s.indexOf('=');
            if (eq <= 0 || eq == s.length() - 1) throw new IllegalArgumentException("--lora-modules expects NAME=PATH, got '" + s + "'");
            out.add(new String[]{s.substring(0, eq), s.substring(eq + 1)});
        }
        if (!loraModules.isEmpty()) return out;
        Path dir = repoAdapters();
        if (dir == null || !Files.isDirectory(dir)) return out;
        try (Stream<Path> st = Files.list(dir)) {
            st.filter(p -> Files.isRegularFile(p.resolve(PeftAdapterLoader.CONFIG))).sorted()
                    .forEach(p -> out.add(new String[]{p.getFileName().toString(), p.toString()}));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot list " + dir + ": " + e.getMessage(), e);
        }
        return out;
    }

    /** adapters/ of the repository the jar was built in (target/bdserve.jar → ../adapters), else of the working directory. */
    static Path repoAdapters() {
        try {
            Path code = Path.of(ServeCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            Path root = code.getParent() == null ? null : code.getParent().getParent();
            if (root != null && Files.isDirectory(root.resolve("adapters"))) return root.resolve("adapters");
        } catch (URISyntaxException | RuntimeException ignored) {
            // fall through
        }
        return Path.of("adapters");
    }
}
