package dev.bdserve.server;

import dev.bdserve.engine.AdapterInfo;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.EngineRequest;
import dev.bdserve.engine.EngineStats;
import dev.bdserve.engine.RequestHandle;
import dev.bdserve.engine.RequestListener;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * What the HTTP server needs from the serving engine: exactly the public methods of
 * {@link dev.bdserve.engine.Engine}, as an interface so tests can put a failing or slow engine behind
 * the server. {@link #of} wraps the real one.
 */
public interface ServingEngine extends AutoCloseable {
    LlamaConfig modelConfig();

    Tokenizer tokenizer();

    EngineConfig config();

    /** Throws EngineException: 400 bad input, 404 unknown adapter, 429 queue full, 503 shutting down or broken. */
    RequestHandle submit(EngineRequest r, RequestListener l);

    AdapterInfo registerAdapter(String name, Path dir, boolean pinned);

    void unregisterAdapter(String name, Duration wait);

    List<AdapterInfo> adapters();

    EngineStats stats();

    boolean healthy();

    void shutdown(Duration grace);

    @Override void close();

    /** The real engine. */
    static ServingEngine of(dev.bdserve.engine.Engine e) {
        return new ServingEngine() {
            @Override public LlamaConfig modelConfig() { return e.modelConfig(); }
            @Override public Tokenizer tokenizer() { return e.tokenizer(); }
            @Override public EngineConfig config() { return e.config(); }
            @Override public RequestHandle submit(EngineRequest r, RequestListener l) { return e.submit(r, l); }
            @Override public AdapterInfo registerAdapter(String name, Path dir, boolean pinned) { return e.registerAdapter(name, dir, pinned); }
            @Override public void unregisterAdapter(String name, Duration wait) { e.unregisterAdapter(name, wait); }
            @Override public List<AdapterInfo> adapters() { return e.adapters(); }
            @Override public EngineStats stats() { return e.stats(); }
            @Override public boolean healthy() { return e.healthy(); }
            @Override public void shutdown(Duration grace) { e.shutdown(grace); }
            @Override public void close() { e.close(); }
        };
    }
}
