package dev.bdserve.server;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.AdapterInfo;
import dev.bdserve.engine.EngineException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

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
     * @param modelRoot        the base model's path (for /v1/models)
     * @param allowedLoraDirs  roots that /v1/load_lora_adapter may read under (empty: run-time loading disabled)
     * @param maxBodyBytes     request bodies larger than this are refused with 413
     * @param maxPromptChars   text prompts (or rendered chat prompts) longer than this are refused with 400
     * @param maxChoices       prompts × n per request at most
     * @param unloadWait       how long /v1/unload_lora_adapter waits for running requests of the adapter before cancelling them
     * @param chatTemplate     the chat template
     * @param accessLog        where one line per request goes (null: nowhere)
     */
    public record Options(String host, int port, String apiKey, String servedModelName, String modelRoot, List<Path> allowedLoraDirs,
                          long maxBodyBytes, int maxPromptChars, int maxChoices, Duration unloadWait, ChatTemplate chatTemplate,
                          PrintStream accessLog) {
        public Options {
            allowedLoraDirs = List.copyOf(allowedLoraDirs);
            if (chatTemplate == null) chatTemplate = ChatTemplate.plain();
        }

        public static Options defaults(String servedModelName) {
            return new Options("127.0.0.1", 0, null, servedModelName, servedModelName, List.of(), 8L << 20, 1 << 20, 256,
                    Duration.ofSeconds(30), ChatTemplate.plain(), null);
        }

        public Options withPort(int p) { return new Options(host, p, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog); }
        public Options withApiKey(String k) { return new Options(host, port, k, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog); }
        public Options withAllowedLoraDirs(List<Path> d) { return new Options(host, port, apiKey, servedModelName, modelRoot, d, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, accessLog); }
        public Options withAccessLog(PrintStream p) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, chatTemplate, p); }
        public Options withChatTemplate(ChatTemplate t) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, unloadWait, t, accessLog); }
        public Options withLimits(long body, int promptChars, int choices) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, body, promptChars, choices, unloadWait, chatTemplate, accessLog); }
        public Options withUnloadWait(Duration w) { return new Options(host, port, apiKey, servedModelName, modelRoot, allowedLoraDirs, maxBodyBytes, maxPromptChars, maxChoices, w, chatTemplate, accessLog); }
    }

    private final ServingEngine engine;
    private final Options options;
    private final ServerMetrics metrics;
    private final Completions completions;
    private final AdapterAdmin adapters;
    private final StatusRoutes status;
    private final JsonBody bodies;
    private final Server jetty;
    private final ServerConnector connector;
    private final AtomicLong ids = new AtomicLong();
    private volatile boolean draining;
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    public OpenAiServer(ServingEngine engine, Options options) {
        this.engine = engine;
        this.options = options;
        this.metrics = new ServerMetrics(options.servedModelName(), new ServerMetrics.StatsSource() {
            @Override public dev.bdserve.engine.EngineStats stats() { return engine.stats(); }
            @Override public List<AdapterInfo> adapters() { return engine.adapters(); }
        });
        this.completions = new Completions(engine, options, metrics);
        this.adapters = new AdapterAdmin(engine, options);
        this.status = new StatusRoutes(engine, options, metrics);
        this.bodies = new JsonBody(options.maxBodyBytes());
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
        connector.setIdleTimeout(Duration.ofMinutes(30).toMillis());   // a long generation may write nothing for a while
        jetty.addConnector(connector);
        jetty.setHandler(new Router());
        jetty.setStopTimeout(5_000);
    }

    public OpenAiServer start() {
        try {
            jetty.start();
        } catch (Exception e) {
            close();
            throw new java.io.UncheckedIOException(new IOException("cannot start the HTTP server on " + options.host() + ":" + options.port() + ": " + e.getMessage(), e));
        }
        return this;
    }

    public int port() { return connector.getLocalPort(); }

    public ServerMetrics metrics() { return metrics; }

    /** New generation requests get 503 from now on (SIGTERM drain). */
    public void stopAdmitting() { draining = true; }

    /** Waits up to {@code max} for the generation requests being answered to finish writing (after the engine drained). */
    public void awaitIdle(Duration max) {
        long deadline = System.nanoTime() + max.toNanos();
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
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
    }

    // ---------------------------------------------------------------- routing

    private final class Router extends Handler.Abstract {
        @Override
        public boolean handle(Request request, Response response, Callback callback) {
            long t0 = System.nanoTime();
            String path = Request.getPathInContext(request);
            String method = request.getMethod();
            String rid = requestId(path);
            Exchange ex = new Exchange(request, response, callback);
            Completions.Outcome outcome = null;
            try {
                response.getHeaders().put("X-Request-Id", rid);
                if (path.startsWith("/v1/") && options.apiKey() != null && !authorized(request))
                    throw new ApiException(401, "AuthenticationError", "Unauthorized", null);
                switch (path) {
                    case "/health" -> { requireMethod(method, "GET"); status.health(ex); }
                    case "/metrics" -> { requireMethod(method, "GET"); status.metrics(ex); }
                    case "/version" -> { requireMethod(method, "GET"); status.version(ex); }
                    case "/v1/models" -> { requireMethod(method, "GET"); status.models(ex); }
                    case "/v1/completions", "/v1/chat/completions" -> {
                        requireMethod(method, "POST");
                        if (draining) throw new ApiException(503, "ServiceUnavailableError", "The server is shutting down.", null);
                        ObjectNode body = bodies.read(request, ex);
                        request.addFailureListener(t -> ex.gone("failure listener: " + t));
                        ex.watch = ClientWatch.start(request, () -> ex.gone(ex.watch == null ? "connection watch" : ex.watch.reason()));
                        inFlight.incrementAndGet();
                        ex.counted = true;
                        outcome = completions.handle(body, path.equals("/v1/chat/completions"), rid, ex);
                    }
                    case "/v1/load_lora_adapter" -> { requireMethod(method, "POST"); adapters.load(bodies.read(request, ex), ex); }
                    case "/v1/unload_lora_adapter" -> { requireMethod(method, "POST"); adapters.unload(bodies.read(request, ex), ex); }
                    default -> throw new ApiException(404, "NotFoundError", "Not Found", null);
                }
            } catch (ApiException e) {
                if (e.status() == 429) response.getHeaders().put(HttpHeader.RETRY_AFTER, "1");
                // an oversized body too large to read to its end: close the connection so that no client reuses it
                if (e.status() == 413 && ex.bodyLeftUnread) response.getHeaders().put(HttpHeader.CONNECTION, "close");
                ex.error(e);
            } catch (EngineException e) {
                ApiException a = ApiException.from(e);
                if (a.status() == 429) response.getHeaders().put(HttpHeader.RETRY_AFTER, "1");
                ex.error(a);
            } catch (CompletionStream.StreamFailed e) {
                ex.status = e.error.status();
            } catch (IOException e) {
                ex.status = 499;   // the client went away (nginx's code for it, in the log only)
                ex.gone(String.valueOf(e.getMessage()));
            } catch (RuntimeException e) {
                ex.error(new ApiException(500, "InternalServerError", "Internal server error: " + e, null));
            } finally {
                ex.finish();
                if (ex.counted) inFlight.decrementAndGet();
                metrics.http(pathLabel(path), ex.status);
                if (path.startsWith("/v1/")) accessLog(rid, method, path, ex.status, outcome, (System.nanoTime() - t0) / 1e9,
                        ex.status == 499 ? ex.goneReason : null);
            }
            return true;
        }
    }

    private String requestId(String path) {
        String prefix = path.endsWith("chat/completions") ? "chatcmpl-" : path.endsWith("completions") ? "cmpl-" : "req-";
        return prefix + UUID.randomUUID().toString().replace("-", "").substring(0, 16) + Long.toHexString(ids.incrementAndGet());
    }

    private static String pathLabel(String p) {
        return switch (p) {
            case "/health", "/metrics", "/version", "/v1/models", "/v1/completions", "/v1/chat/completions",
                 "/v1/load_lora_adapter", "/v1/unload_lora_adapter" -> p;
            default -> "other";
        };
    }

    private static void requireMethod(String method, String want) {
        if (!method.equals(want)) throw new ApiException(405, "MethodNotAllowed", "Method Not Allowed", null);
    }

    private boolean authorized(Request r) {
        String h = r.getHeaders().get(HttpHeader.AUTHORIZATION);
        String want = "Bearer " + options.apiKey();
        return h != null && MessageDigest.isEqual(h.getBytes(StandardCharsets.UTF_8), want.getBytes(StandardCharsets.UTF_8));
    }

    private void accessLog(String rid, String method, String path, int status, Completions.Outcome o, double seconds, String gone) {
        PrintStream log = options.accessLog();
        if (log == null) return;
        StringBuilder sb = new StringBuilder(200);
        sb.append("access ts=").append(Instant.now()).append(" id=").append(rid).append(" method=").append(method)
                .append(" path=").append(path).append(" status=").append(status);
        if (o != null) {
            sb.append(" model=").append(o.model).append(" adapter=").append(o.adapter == null ? "-" : o.adapter)
                    .append(" stream=").append(o.stream).append(" choices=").append(o.choices)
                    .append(" prompt_tokens=").append(o.promptTokens).append(" completion_tokens=").append(o.completionTokens)
                    .append(" ttft_ms=").append(Double.isNaN(o.ttftSeconds) ? "-" : String.format(Locale.ROOT, "%.1f", o.ttftSeconds * 1e3))
                    .append(" finish=").append(o.finish.isEmpty() ? "-" : o.finish);
        }
        sb.append(" total_ms=").append(String.format(Locale.ROOT, "%.1f", seconds * 1e3));
        if (gone != null) sb.append(" gone=\"").append(gone.replace('"', '\'')).append('"');
        log.println(sb);
    }
}
