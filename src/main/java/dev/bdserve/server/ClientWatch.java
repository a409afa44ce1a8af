package dev.bdserve.server;

import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.io.AbstractEndPoint;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.util.Callback;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CancellationException;

/**
 * Notices that an HTTP/1.x client closed its connection while its request is still being answered.
 *
 * <p>Jetty 12 does not read from an HTTP/1.x connection while a handler runs, so neither
 * {@link Request#addFailureListener} nor a connection listener fires when the client goes away: only a failed write
 * would tell, and a non-streaming generation writes nothing until it is done. The watch registers read interest on
 * the connection's end point once the request body has been read: a read of EOF, or a read error, means the client
 * is gone ({@code onGone} runs). Bytes that arrive instead (a request pipelined behind this one) are handed back to
 * the connection, which parses them after this response as usual, and the watch ends there.
 *
 * <p>{@link #stop} must be called before the response completes: Jetty aborts a connection that still has read
 * interest when its request completes. Stopping withdraws the interest (and waits for a read in progress).
 */
final class ClientWatch implements Callback {
    /** Marks the read interest this watch withdraws itself. */
    private static final CancellationException STOPPED = new CancellationException("client watch stopped");

    private final AbstractEndPoint endPoint;
    private final Connection.UpgradeTo connection;       // takes back bytes read ahead of their time
    private final Runnable onGone;
    private boolean armed, stopped;                      // guarded by this
    private volatile boolean gone;
    private volatile String reason = "";                 // what showed the client gone (for the access log)

    private ClientWatch(AbstractEndPoint endPoint, Connection.UpgradeTo connection, Runnable onGone) {
        this.endPoint = endPoint;
        this.connection = connection;
        this.onGone = onGone;
    }

    /**
     * Starts watching the connection of {@code request}, whose body must have been read to its end. Returns null when
     * there is nothing this watch can do: not HTTP/1.x (HTTP/2 reports a reset stream through the request's failure
     * listeners), an end point or connection of another kind, or read interest already taken.
     */
    static ClientWatch start(Request request, Runnable onGone) {
        HttpVersion v = request.getConnectionMetaData().getHttpVersion();
        if (v != HttpVersion.HTTP_1_1 && v != HttpVersion.HTTP_1_0) return null;
        Connection c = request.getConnectionMetaData().getConnection();
        EndPoint ep = c.getEndPoint();
        if (!(ep instanceof AbstractEndPoint aep) || !(c instanceof Connection.UpgradeTo up)) return null;
        ClientWatch w = new ClientWatch(aep, up, onGone);
        synchronized (w) {
            w.armed = aep.tryFillInterested(w);
            return w.armed ? w : null;
        }
    }

    /** True once the client is known to be gone. */
    boolean gone() { return gone; }

    /** How the client was found gone: an end of stream, a read error, or the failed read interest. */
    String reason() { return reason; }

    /** The connection is readable: EOF (the client closed), an early byte of a pipelined request, or nothing. */
    @Override
    public void succeeded() {
        synchronized (this) {
            armed = false;
            if (stopped) return;                         // the connection reads whatever came, after the response
            ByteBuffer one = ByteBuffer.allocate(1);     // one byte at most, so that it always fits back
            one.flip();                                  // Jetty's buffers are kept in flush mode: empty
            int n;
            try {
                n = endPoint.fill(one);
            } catch (IOException e) {
                n = -1;                                  // e.g. connection reset by the peer
                reason = "watch: read failed: " + e;
            }
            if (n > 0) {                                 // a pipelined request: give its first byte back, stop watching
                connection.onUpgradeTo(one);
                stopped = true;
                return;
            }
            if (n == 0) {                                // nothing after all: keep watching
                armed = endPoint.tryFillInterested(this);
                return;
            }
            stopped = true;
            gone = true;
            if (reason.isEmpty()) reason = "watch: end of stream";
        }
        onGone.run();
    }

    /** The read interest failed: withdrawn by {@link #stop}, or the connection failed or idled out. */
    @Override
    public void failed(Throwable x) {
        synchronized (this) {
            armed = false;
            if (x == STOPPED || stopped) return;
            stopped = true;
            if (endPoint.isOpen() && !endPoint.isInputShutdown()) return;   // e.g. an idle timeout: not a disconnect
            gone = true;
            reason = "watch: read interest failed: " + x;
        }
        onGone.run();
    }

    @Override
    public InvocationType getInvocationType() { return InvocationType.NON_BLOCKING; }   // a one-byte non-blocking read

    /** Stops watching; idempotent. Call before the response completes. */
    synchronized void stop() {
        if (stopped) return;
        stopped = true;
        if (armed) {
            armed = false;
            endPoint.getFillInterest().onFail(STOPPED);  // withdraws this watch's interest (it calls failed(STOPPED))
        }
    }
}
