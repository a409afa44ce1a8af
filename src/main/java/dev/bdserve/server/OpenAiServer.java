package dev.bdserve.server;

import dev.bdserve.engine.AdapterInfo;
import dev.bdserve.engine.EngineStats;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;

/**
 * The OpenAI-compatible HTTP server (vLLM's routes and shapes) on Jetty 12, one virtual thread per
 * request. Generation requests block their virtual thread on a queue fed by the engine's listener, so
 * the engine's step thread never waits on a socket. A client that goes away cancels the request's engine
 * requests (freeing their KV blocks): noticed by a failed write, or, while nothing is written (a non-streaming
 * request, or before a stream's first token), by a {@link ClientWatch} on the connection.
 */
public final class OpenAiServer implements AutoCloseable {

    /**
     * Server settings.
     *
     * @param host             address to bind
     * @param port             port (0: ephemeral)
     * @param apiKey           required bearer token for /v1/*, or null
     * @param servedModelName  the base model's id in the API
     * @param modelRoot        the base model's path (for /v1/models, only with {@code showPaths})
     * @param allowedLoraDirs  roots that /v1/load_lora_adapter may read under (empty: run-time loading and unloading disabled)
     * @param maxBodyBytes     request bodies larger than this are refused with 413
     * @param maxPromptChars   text prompts (or rendered chat prompts) longer than this are refused with 400
     * @param maxChoices       prompts × n per request at most
     * @param unloadWait       how long /v1/unload_lora_adapter waits for running requests of the adapter before cancelling them
     * @param chatTemplate     the chat template
     * @param accessLog        where one line per request goes (null: nowhere)
     * @param showPaths        whether /v1/models shows the server's file paths as {@code root} (else the model's id)
     * @param connections      the limits on connections: how many, and how long one may idle or send a request
     */
    public record Options(String host, int port, String apiKey, String servedModelName, String modelRoot, List<Path> allowedLoraDirs,
                          long maxBodyBytes, int maxPromptChars, int maxChoices, Duration unloadWait, ChatTemplate chatTemplate,
                          PrintStream accessLog, boolean showPaths, ConnectionLimits connections) {
        public Options {
            allowedLoraDirs = List.copyOf(allowedLoraDirs);
            if (chatTemplate == null) chatTemplate = ChatTemplate.plain();
            if (connections == null) connections = ConnectionLimits.defaults();
        }

        public static Options defaults(String servedModelName) {
            return new Options("127.0.0.1", 0, null, servedModelName, servedModelName, List.of(), 8L << 20, 1 << 20, 256,
                    Duration.ofSeconds(30), ChatTemplate.plain(), null, false, ConnectionLimits.defaults());
        }

        /** Run-time adapter loading and unloading are on (some --allowed-lora-dir was given). */
        public boolean runtimeLoraUpdates() { return !allowedLoraDirs.isEmpty(); }

        public Options withPort(int p) { return new Options(host, p, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog, showPaths, connections); }
        public Options withApiKey(String k) { return new Options(host, port, k, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog, showPaths, connections); }
        public Options withAllowedLoraDirs(List<Path> d) { return new Options(host, port, apiKey, servedModelName, modelRoot, d, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog, showPaths, connections); }
        public Options withAccessLog(PrintStream p) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, p, showPaths, connections); }
        public Options withChatTemplate(ChatTemplate t) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, t, accessLog, showPaths, connections); }
        public Options withLimits(long body, int promptChars, int choices) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, body, promptChars, choices, unloadWait, chatTemplate, accessLog, showPaths, connections); }
        public Options withUnloadWait(Duration w) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, w, chatTemplate, accessLog, showPaths, connections); }
        public Options withShowPaths(boolean s) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog, s, connections); }
        public Options withConnections(ConnectionLimits c) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog, showPaths, c); }
    }

    private final Options options;
    private final ServerMetrics metrics;
    private final Router router;
    private final Server jetty;
    private final ServerConnector connector;
    private final ConnectionGuard guard;

    public OpenAiServer(ServingEngine engine, Options options) {
        this.options = options;
        this.metrics = new ServerMetrics(options.servedModelName(), new ServerMetrics.StatsSource() {
            @Override public EngineStats stats() { return engine.stats(); }
            @Override public List<AdapterInfo> adapters() { return engine.adapters(); }
        });
        this.guard = new ConnectionGuard(options.connections());
        this.router = new Router(engine, options, metrics, guard);
        QueuedThreadPool pool = new QueuedThreadPool(64, 4);
        pool.setName("bdserve-http");
        pool.setVirtualThreadsExecutor(Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("bdserve-req-", 0).factory()));
        jetty = new Server(pool);
        HttpConfiguration hc = new HttpConfiguration();
        hc.setSendServerVersion(false);
        hc.setSendDateHeader(true);
        connector = new ServerConnector(jetty, new HttpConnectionFactory(hc));
        connector.setHost(options.host());
        connector.setPort(options.port());
        connector.setAcceptQueueSize(1024);                              // bursts of connections wait in the kernel, not in connect()
        connector.setIdleTimeout(Duration.ofMinutes(30).toMillis());   // a long generation may write nothing for a while
        connector.addEventListener(guard);                               // the tighter limits: cap, idle, header and body time
        jetty.addConnector(connector);
        jetty.setHandler(router);
        jetty.setStopTimeout(5_000);
    }

    public OpenAiServer start() {
        try {
            jetty.start();
        } catch (Exception e) {
            close();
            throw new UncheckedIOException(new IOException("cannot start the HTTP server on " + options.host() + ":" + options.port() + ": " + e.getMessage(), e));
        }
        return this;
    }

    public int port() { return connector.getLocalPort(); }

    public ServerMetrics metrics() { return metrics; }

    /** Connections open now. */
    public int openConnections() { return guard.openConnections(); }

    /** New generation requests and adapter loads and unloads get 503, and /health 503, from now on (SIGTERM drain). */
    public void stopAdmitting() { router.stopAdmitting(); }

    /** Waits up to {@code max} for the generation requests being answered to finish writing (after the engine drained). */
    public void awaitIdle(Duration max) {
        long deadline = System.nanoTime() + max.toNanos();
        while (router.inFlight() > 0 && System.nanoTime() < deadline) {
            try { Thread.sleep(10); } catch (InterruptedException e) { Thread.currentThread().interrupt(); return; }
        }
    }

    @Override
    public void close() {
        try {
            jetty.stop();
        } catch (Exception e) {
            // stopping anyway
        }
        guard.close();
    }
}
