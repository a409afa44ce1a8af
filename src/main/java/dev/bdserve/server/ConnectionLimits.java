package dev.bdserve.server;

import java.time.Duration;

/**
 * What one client may hold of the server's connections.
 *
 * @param maxConnections connections open at most: beyond it the longest-idle connection is closed (one answering a
 *                       request never is), or the new one itself when every other is busy
 * @param idleTimeout    how long a connection may go without a request being answered: freshly opened, sending its
 *                       request line and headers, or idle between keep-alive requests; then it is closed
 * @param bodyTimeout    how long a request may take to send its body once its headers arrived; then its connection is
 *                       closed
 */
public record ConnectionLimits(int maxConnections, Duration idleTimeout, Duration bodyTimeout) {
    public ConnectionLimits {
        if (maxConnections < 1) throw new IllegalArgumentException("the connection cap must be ≥ 1, got " + maxConnections);
        if (idleTimeout.isNegative() || idleTimeout.isZero()) throw new IllegalArgumentException("the idle (header) timeout must be positive");
        if (bodyTimeout.isNegative() || bodyTimeout.isZero()) throw new IllegalArgumentException("the body timeout must be positive");
    }

    /** 1024 connections; 60 s to send the headers (or to idle between requests) and 60 s to send the body. */
    public static ConnectionLimits defaults() { return new ConnectionLimits(1024, Duration.ofSeconds(60), Duration.ofSeconds(60)); }
}
