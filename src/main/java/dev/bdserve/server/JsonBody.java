package dev.bdserve.server;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.eclipse.jetty.server.Request;

import java.io.IOException;
import java.io.InputStream;

/** Reads a request body as one JSON object, within the server's size limit. */
final class JsonBody {
    /**
     * Bytes of an oversized body read and dropped before the 413, so that a client still sending it reads the answer
     * instead of a reset (closing a socket with unread input resets it). Beyond this the connection is closed.
     */
    static final long DRAIN_BYTES = 16L << 20;

    private final long maxBodyBytes;

    JsonBody(long maxBodyBytes) { this.maxBodyBytes = maxBodyBytes; }

    /** Reads a JSON object body of at most maxBodyBytes (413 beyond; 400 if it is not a JSON object). */
    ObjectNode read(Request request, Exchange ex) throws IOException {
        long declared = request.getLength();
        byte[] body;
        try (InputStream in = Request.asInputStream(request)) {
            if (declared > maxBodyBytes) {
                ex.bodyLeftUnread = declared > DRAIN_BYTES || !drained(in);
                throw tooLarge();
            }
            body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBodyBytes + 1));
            if (body.length > maxBodyBytes) {
                ex.bodyLeftUnread = !drained(in);
                throw tooLarge();
            }
        }
        JsonNode n;
        try {
            n = Json.MAPPER.readTree(body);
        } catch (JacksonException e) {
            String m = e.getOriginalMessage();
            throw ApiException.badRequest("Invalid JSON in the request body: " + (m == null ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m)));
        }
        if (n == null || !n.isObject()) throw ApiException.badRequest("The request body must be a JSON object.");
        return (ObjectNode) n;
    }

    /** Reads and drops the rest of a body, at most {@link #DRAIN_BYTES}; true if it reached the end. */
    private static boolean drained(InputStream in) throws IOException {
        byte[] sink = new byte[64 << 10];
        long left = DRAIN_BYTES;
        while (left > 0) {
            int n = in.read(sink, 0, (int) Math.min(sink.length, left));
            if (n < 0) return true;
            left -= n;
        }
        return in.read() < 0;
    }

    private ApiException tooLarge() {
        return new ApiException(413, "RequestEntityTooLarge", "The request body is larger than " + maxBodyBytes + " bytes.", null);
    }
}
