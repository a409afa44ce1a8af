package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.AdapterInfo;

import java.io.IOException;
import java.time.Instant;

/** The read-only routes: /health, /metrics, /version and /v1/models. */
final class StatusRoutes {
    private final ServingEngine engine;
    private final OpenAiServer.Options options;
    private final ServerMetrics metrics;
    private final long created = Instant.now().getEpochSecond();

    StatusRoutes(ServingEngine engine, OpenAiServer.Options options, ServerMetrics metrics) {
        this.engine = engine;
        this.options = options;
        this.metrics = metrics;
    }

    void health(Exchange ex) {
        if (engine.healthy()) ex.text(200, "text/plain; charset=utf-8", "");
        else ex.error(new ApiException(503, "ServiceUnavailableError", "The engine is not healthy (a tensor-parallel rank was lost).", null));
    }

    void metrics(Exchange ex) { ex.text(200, metrics.contentType(), metrics.scrape()); }

    void version(Exchange ex) { ex.json(200, "{\"version\":\"0.1.0\"}"); }

    void models(Exchange ex) throws IOException { ex.json(200, Json.MAPPER.writeValueAsString(modelList())); }

    /**
     * The base model, then every loaded adapter with the base model as its parent. {@code root} is the file path only
     * when the server was told to show paths: by default no client learns the server's file layout.
     */
    private ObjectNode modelList() {
        ObjectNode r = Json.MAPPER.createObjectNode();
        r.put("object", "list");
        ArrayNode data = r.putArray("data");
        ObjectNode base = data.addObject();
        base.put("id", options.servedModelName());
        base.put("object", "model");
        base.put("created", created);
        base.put("owned_by", "bdserve");
        base.put("root", options.showPaths() ? options.modelRoot() : options.servedModelName());
        base.putNull("parent");
        base.put("max_model_len", engine.modelConfig().maxPositions());
        for (AdapterInfo a : engine.adapters()) {
            ObjectNode m = data.addObject();
            m.put("id", a.name());
            m.put("object", "model");
            m.put("created", created);
            m.put("owned_by", "bdserve");
            m.put("root", options.showPaths() && a.path() != null ? a.path().toString() : a.name());
            m.put("parent", options.servedModelName());
            m.putNull("max_model_len");
        }
        return r;
    }
}
