package dev.bdserve.server;

import org.eclipse.jetty.io.Connection;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Keeps the connections within {@link ConnectionLimits}: closes the longest-idle one when a new connection passes the
 * cap, and closes connections that idle, send their headers or send their body for too long. Jetty's own idle timeout
 * cannot do the latter jobs: it must stay long, because a non-streaming generation writes nothing for minutes.
 *
 * <p>The router reports each request's phases ({@link #reading}, {@link #answering}, {@link #idle}); a connection is
 * idle from its opening until its first request's headers are parsed, and again after each response.
 */
final class ConnectionGuard implements Connection.Listener, AutoCloseable {
    private enum Phase { IDLE, READING_BODY, ANSWERING }

    /** One connection's phase and since when (System.nanoTime()). */
    private static final class State {
        volatile Phase phase = Phase.IDLE;
        volatile long since = System.nanoTime();

        void set(Phase p) { since = System.nanoTime(); phase = p; }
    }

    private final ConnectionLimits limits;
    private final Map<Connection, State> open = new ConcurrentHashMap<>();
    private final ScheduledExecutorService reaper =
            Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("bdserve-conn-guard").unstarted(r));

    ConnectionGuard(ConnectionLimits limits) {
        this.limits = limits;
        long tick = Math.max(50, Math.min(1000, Math.min(limits.idleTimeout().toMillis(), limits.bodyTimeout().toMillis()) / 4));
        reaper.scheduleWithFixedDelay(this::reap, tick, tick, TimeUnit.MILLISECONDS);
    }

    /** Connections open now. */
    int openConnections() { return open.size(); }

    @Override
    public void onOpened(Connection c) {
        open.put(c, new State());
        if (open.size() <= limits.maxConnections()) return;
        synchronized (this) {                         // one eviction at a time, so that two openings do not both pick one victim
            while (open.size() > limits.maxConnections()) {
                Connection oldest = null;
                long oldestSince = Long.MAX_VALUE;
                for (var e : open.entrySet()) {
                    State s = e.getValue();
                    if (s.phase == Phase.IDLE && s.since < oldestSince) { oldest = e.getKey(); oldestSince = s.since; }
                }
                if (oldest == null) oldest = c;      // every other connection is answering a request: refuse this one
                if (open.remove(oldest) == null) continue;
                oldest.getEndPoint().close();
                if (oldest == c) return;
            }
        }
    }

    @Override
    public void onClosed(Connection c) { open.remove(c); }

    /** The request's headers arrived; its body is being read. */
    void reading(Connection c) { set(c, Phase.READING_BODY); }

    /** The request was read; it is being answered (never closed for time). */
    void answering(Connection c) { set(c, Phase.ANSWERING); }

    /** The response went out; the connection waits for its next request. */
    void idle(Connection c) { set(c, Phase.IDLE); }

    private void set(Connection c, Phase p) {
        State s = c == null ? null : open.get(c);
        if (s != null) s.set(p);
    }

    private void reap() {
        long now = System.nanoTime();
        for (var e : open.entrySet()) {
            State s = e.getValue();
            long limit = switch (s.phase) {
                case IDLE -> limits.idleTimeout().toNanos();
                case READING_BODY -> limits.bodyTimeout().toNanos();
                case ANSWERING -> Long.MAX_VALUE;
            };
            if (now - s.since > limit && open.remove(e.getKey(), s)) e.getKey().getEndPoint().close();
        }
    }

    @Override
    public void close() { reaper.shutdownNow(); }
}
