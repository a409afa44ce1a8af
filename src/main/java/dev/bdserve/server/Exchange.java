package dev.bdserve.server;

import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** One request/response; writes blocking (we are on a virtual thread). */
final class Exchange implements Completions.Sink {
    final Request request;
    final Response response;
    final Callback callback;
    OutputStream out;
    int status = 200;
    boolean committed, done, counted;
    boolean bodyLeftUnread;    // a refused oversized body was not read to its end (the connection is then closed)
    volatile boolean failed;   // the client went away (a failed write, a failure listener or the watch)
    volatile String goneReason; // what reported it (logged with status 499)
    ClientWatch watch;         // generation requests over HTTP/1.x: notices a close while nothing is written

    Exchange(Request request, Response response, Callback callback) {
        this.request = request;
        this.response = response;
        this.callback = callback;
    }

    void gone(String reason) {
        if (goneReason == null) goneReason = reason;
        failed = true;
    }

    /** Ends the watch: Jetty must be the only reader of the connection when the response completes. */
    private void stopWatch() {
        if (watch != null) watch.stop();
    }

    void text(int st, String contentType, String body) {
        stopWatch();
        status = st;
        response.setStatus(st);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, b.length);
        committed = true;
        response.write(true, ByteBuffer.wrap(b), callback);
        done = true;
    }

    void json(int st, String body) { text(st, "application/json", body); }

    @Override public void json(String body) { json(200, body); }

    void error(ApiException e) {
        if (committed) { status = e.status(); return; }
        try {
            json(e.status(), Json.MAPPER.writeValueAsString(e.body()));
        } catch (IOException io) {
            throw new IllegalStateException(io);
        }
    }

    @Override
    public void startStream() {
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        committed = true;
        out = Content.Sink.asOutputStream(response);
    }

    @Override public boolean clientGone() { return failed; }

    @Override
    public void event(String payload) throws IOException {
        if (failed) throw new IOException("the client went away");
        out.write(("data: " + payload + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    void finish() {
        stopWatch();
        if (done) return;
        done = true;
        if (out != null) {
            try {
                out.close();
                callback.succeeded();
            } catch (IOException | RuntimeException e) {
                callback.failed(e);
            }
        } else {
            callback.failed(new IOException("no response written"));
        }
    }
}
