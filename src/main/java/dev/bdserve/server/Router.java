package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.EngineException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Dispatches a request to its route after checking the API key, answers what a route throws as an error in vLLM's
 * shape, and accounts for every request (metrics, access log, generation requests in flight).
 */
final class Router extends Handler.Abstract {
    private final OpenAiServer.Options options;
    private final ServerMetrics metrics;
    private final Completions completions;
    private final AdapterAdmin adapters;
    private final StatusRoutes status;
    private final JsonBody bodies;
    private final AccessLog accessLog;
    private final ConnectionGuard guard;
    private final AtomicLong ids = new AtomicLong();
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean draining;

    Router(ServingEngine engine, OpenAiServer.Options options, ServerMetrics metrics, ConnectionGuard guard) {
        this.guard = guard;
        this.options = options;
        this.metrics = metrics;
        this.completions = new Completions(engine, options, metrics);
        this.adapters = new AdapterAdmin(engine, options);
        this.status = new StatusRoutes(engine, options, metrics);
        this.bodies = new JsonBody(options.maxBodyBytes());
        this.accessLog = new AccessLog(options.accessLog());
    }

    /** New generation requests, adapter loads and unloads get 503 from now on, and so does /health. */
    void stopAdmitting() { draining = true; }

    /** Generation requests being answered. */
    int inFlight() { return inFlight.get(); }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        long t0 = System.nanoTime();
        String path = Request.getPathInContext(request);
        String method = request.getMethod();
        String rid = requestId(path);
        Exchange ex = new Exchange(request, response, callback);
        Completions.Outcome outcome = null;
        Connection connection = request.getConnectionMetaData().getConnection();
        guard.reading(connection);
        try {
            response.getHeaders().put("X-Request-Id", rid);
            if (path.startsWith("/v1/") && options.apiKey() != null && !authorized(request))
                throw new ApiException(401, "AuthenticationError", "Unauthorized", null);
            switch (path) {
                case "/health" -> {
                    requireMethod(method, "GET");
                    guard.answering(connection);
                    if (draining) throw shuttingDown();
                    status.health(ex);
                }
                case "/metrics" -> { requireMethod(method, "GET"); guard.answering(connection); status.metrics(ex); }
                case "/version" -> { requireMethod(method, "GET"); guard.answering(connection); status.version(ex); }
                case "/v1/models" -> { requireMethod(method, "GET"); guard.answering(connection); status.models(ex); }
                case "/v1/completions", "/v1/chat/completions" -> {
                    requireMethod(method, "POST");
                    if (draining) throw shuttingDown();
                    ObjectNode body = body(request, ex, connection);
                    request.addFailureListener(t -> ex.gone("failure listener: " + t));
                    ex.watch = ClientWatch.start(request, () -> ex.gone(ex.watch == null ? "connection watch" : ex.watch.reason()));
                    inFlight.incrementAndGet();
                    ex.counted = true;
                    outcome = completions.handle(body, path.equals("/v1/chat/completions"), rid, ex);
                }
                case "/v1/load_lora_adapter" -> {
                    requireMethod(method, "POST");
                    if (draining) throw shuttingDown();
                    adapters.load(body(request, ex, connection), ex);
                }
                case "/v1/unload_lora_adapter" -> {
                    requireMethod(method, "POST");
                    if (draining) throw shuttingDown();
                    adapters.unload(body(request, ex, connection), ex);
                }
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
            guard.idle(connection);
            if (ex.counted) inFlight.decrementAndGet();
            metrics.http(pathLabel(path), ex.status);
            if (path.startsWith("/v1/")) accessLog.write(rid, method, path, ex.status, outcome, (System.nanoTime() - t0) / 1e9,
                    ex.status == 499 ? ex.goneReason : null);
        }
        return true;
    }

    /** Reads the body within the connection guard's body timeout; from then on the request is being answered. */
    private ObjectNode body(Request request, Exchange ex, Connection connection) throws IOException {
        ObjectNode b = bodies.read(request, ex);
        guard.answering(connection);
        return b;
    }

    private static ApiException shuttingDown() {
        return new ApiException(503, "ServiceUnavailableError", "The server is shutting down.", null);
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
}
