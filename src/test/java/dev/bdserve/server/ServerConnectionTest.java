package dev.bdserve.server;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The connection limits: slow headers and slow bodies are cut off, and idle sockets beyond the cap do not lock anyone out. */
class ServerConnectionTest {

    private static Socket connect(TestServer ts) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", ts.server.port()), 5_000);
        s.setSoTimeout(30_000);   // liveness bound only: the server is expected to close far sooner
        return s;
    }

    /** Reads until the server closes the connection; what it sent. Fails if it never does within the socket timeout. */
    private static String readToClose(Socket s) throws IOException {
        InputStream in = s.getInputStream();
        try {
            return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        } catch (SocketTimeoutException e) {
            throw new AssertionError("the server kept a stalled connection open", e);
        } catch (IOException e) {
            return "";   // reset: closed too
        }
    }

    @Test
    void stalledHeadersAndStalledBodiesAreClosed() throws Exception {
        ConnectionLimits limits = new ConnectionLimits(64, Duration.ofMillis(700), Duration.ofMillis(700));
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withConnections(limits))) {
            try (Socket idle = connect(ts)) {                               // connects, sends nothing
                assertEquals("", readToClose(idle));
            }
            try (Socket headers = connect(ts)) {                            // half a request line and header block
                headers.getOutputStream().write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Ty".getBytes(StandardCharsets.ISO_8859_1));
                assertEquals("", readToClose(headers));
            }
            try (Socket body = connect(ts)) {                               // headers, then 10 of 100 body bytes
                OutputStream out = body.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
                        .getBytes(StandardCharsets.ISO_8859_1));
                out.flush();
                readToClose(body);
            }
            assertEquals(200, ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}").statusCode());
            long until = System.nanoTime() + 10_000_000_000L;   // the line is written once the handler saw the close
            while (!ts.accessLog.toString().contains("status=499") && System.nanoTime() < until) Thread.sleep(10);
            assertTrue(ts.accessLog.toString().contains("status=499"), "the stalled body was logged as a gone client: " + ts.accessLog);
        }
    }

    @Test
    void aRequestIsAnsweredWhileTwoThousandIdleSocketsAreOpen() throws Exception {
        ConnectionLimits limits = new ConnectionLimits(64, Duration.ofSeconds(120), Duration.ofSeconds(120));
        List<Socket> idle = new ArrayList<>();
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withConnections(limits))) {
            try {
                for (int i = 0; i < 2000; i++) idle.add(connect(ts));
                long t0 = System.nanoTime();
                HttpResponse<String> r = ts.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}");
                double seconds = (System.nanoTime() - t0) / 1e9;
                assertEquals(200, r.statusCode(), r.body());
                assertTrue(seconds < 5, "answered after " + seconds + " s");
                assertTrue(ts.server.openConnections() <= limits.maxConnections(), ts.server.openConnections() + " connections open");
            } finally {
                for (Socket s : idle) s.close();
            }
        }
    }
}
