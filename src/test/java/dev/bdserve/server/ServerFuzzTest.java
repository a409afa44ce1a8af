package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Malformed JSON, wrong types, huge numbers, invalid UTF-8 and oversized bodies: every response is a 4xx
 * with a message (random mutations of a valid body may also be valid: then 200), never a 5xx, and the
 * server answers a normal request afterwards.
 */
class ServerFuzzTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static TestServer ts;

    @BeforeAll static void start() { ts = new TestServer(1, TestServer.config(), o -> o.withLimits(1 << 20, 1 << 20, 256)); }

    @AfterAll static void stop() { if (ts != null) ts.close(); }

    static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Test
    void designedBadInputsAreAll4xxWithAMessage() {
        List<byte[]> bodies = new ArrayList<>();
        for (String s : List.of("", "{", "}", "null", "true", "42", "\"x\"", "[]", "{\"prompt\":}", "{\"prompt\":\"x\",}",
                "{\"prompt\":'x'}", "{prompt:\"x\"}", "{\"prompt\":\"x\"} trailing", "{\"prompt\":NaN}", "{\"prompt\":\"\\uZZZZ\"}",
                "{\"prompt\":\"x\",\"max_tokens\":1e400}", "{\"prompt\":\"x\",\"max_tokens\":99999999999999999999999999}",
                "{\"prompt\":\"x\",\"max_tokens\":-99999999999999999999999999}", "{\"prompt\":\"x\",\"max_tokens\":2.5}",
                "{\"prompt\":\"x\",\"temperature\":1e400}", "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "{\"prompt\":\"x\",\"top_k\":1e30}",
                "{\"prompt\":\"x\",\"seed\":1e30}", "{\"prompt\":\"x\",\"n\":100000}", "{\"prompt\":\"x\",\"n\":true}",
                "{\"prompt\":[1,2,3e10]}", "{\"prompt\":[[1],[\"a\"]]}", "{\"prompt\":[1,-1]}", "{\"prompt\":[[]]}",
                "{\"prompt\":\"x\",\"stop\":{}}", "{\"prompt\":\"x\",\"stop\":[\"\"]}", "{\"prompt\":\"x\",\"stream\":\"yes\"}",
                "{\"prompt\":\"x\",\"logprobs\":-1}", "{\"prompt\":\"x\",\"echo\":1}", "{\"prompt\":\"x\",\"ignore_eos\":null,\"min_p\":2}",
                "{\"prompt\":\"x\",\"frequency_penalty\":-1e308}", "{\"prompt\":\"x\",\"model\":[\"a\"]}", "{\"prompt\":\"x\",\"model\":\"\"}",
                "{\"prompt\":\"x\",\"suffix\":\"y\"}", "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":5}"))
            bodies.add(utf8(s));
        bodies.add(utf8("[".repeat(5000) + "]".repeat(5000)));                             // deep nesting
        bodies.add(utf8("{\"prompt\":" + "[".repeat(3000) + "1" + "]".repeat(3000) + "}"));
        bodies.add(utf8("{\"prompt\":\"x\",\"max_tokens\":" + "9".repeat(5000) + "}"));     // a very long number
        bodies.add(new byte[]{'{', '"', 'p', 'r', 'o', 'm', 'p', 't', '"', ':', '"', (byte) 0xff, (byte) 0xfe, '"', '}'});   // invalid UTF-8
        bodies.add(new byte[]{'{', '"', 'p', 'r', 'o', 'm', 'p', 't', '"', ':', '"', (byte) 0xc3, '"', '}'});              // truncated sequence
        bodies.add(new byte[]{'{', '"', 'p', 'r', 'o', 'm', 'p', 't', '"', ':', '"', (byte) 0xed, (byte) 0xa0, (byte) 0x80, '"', '}'}); // encoded surrogate
        bodies.add(new byte[]{(byte) 0xef, (byte) 0xbb, (byte) 0xbf, 0, 0, 0, 1});
        byte[] huge = new byte[(1 << 20) + 10];                                               // over the 1 MiB limit of this server
        java.util.Arrays.fill(huge, (byte) '[');
        bodies.add(huge);
        bodies.add(utf8("{\"prompt\":\"" + "a".repeat((1 << 20) - 20) + "\"}"));                // under the body limit, prompt too long
        for (byte[] b : bodies) {
            for (String path : List.of("/v1/completions", "/v1/chat/completions")) {
                HttpResponse<String> r = ts.post(path, b, null);
                String what = path + " " + new String(b, 0, Math.min(b.length, 80), StandardCharsets.UTF_8);
                assertTrue(r.statusCode() >= 400 && r.statusCode() < 500, what + " → " + r.statusCode() + " " + r.body());
                assertMessage(r, what);
            }
            HttpResponse<String> r = ts.post("/v1/load_lora_adapter", b, null);
            assertTrue(r.statusCode() >= 400 && r.statusCode() < 500, "load_lora_adapter → " + r.statusCode() + " " + r.body());
        }
        normalRequestStillWorks();
    }

    /**
     * A body over the limit is read to its end before the 413, so the client, still sending it, reads the answer rather
     * than a reset (closing a socket with unread input resets it): repeated on every POST route, none may fail.
     */
    @Test
    void oversizedBodiesGetTheir413NotAReset() {
        byte[] huge = new byte[(1 << 20) + 4096];
        java.util.Arrays.fill(huge, (byte) ' ');
        for (int i = 0; i < 20; i++)
            for (String path : List.of("/v1/completions", "/v1/chat/completions", "/v1/load_lora_adapter", "/v1/unload_lora_adapter")) {
                HttpResponse<String> r = ts.post(path, huge, null);
                assertEquals(413, r.statusCode(), path + " " + r.body());
                assertMessage(r, path);
            }
        normalRequestStillWorks();
    }

    @Test
    void randomMutationsNeverGive5xx() {
        byte[] valid = utf8("{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":3,\"temperature\":0.5,"
                + "\"stop\":[\"x\"],\"n\":1,\"logprobs\":2,\"seed\":7}");
        SplittableRandom rnd = new SplittableRandom(1234);
        int ok = 0, bad = 0;
        for (int i = 0; i < 300; i++) {
            byte[] b = mutate(valid, rnd);
            HttpResponse<String> r = ts.post("/v1/completions", b, null);
            String what = new String(b, StandardCharsets.UTF_8);
            if (r.statusCode() == 200) { ok++; continue; }
            assertTrue(r.statusCode() >= 400 && r.statusCode() < 500, what + " → " + r.statusCode() + " " + r.body());
            assertMessage(r, what);
            bad++;
        }
        assertTrue(bad > 100, "mutations rarely broke the body: " + ok + " ok, " + bad + " refused");
        normalRequestStillWorks();
    }

    private static byte[] mutate(byte[] in, SplittableRandom rnd) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int edits = 1 + rnd.nextInt(4);
        byte[] b = in.clone();
        for (int e = 0; e < edits; e++) {
            int pos = rnd.nextInt(b.length);
            switch (rnd.nextInt(4)) {
                case 0 -> b[pos] = (byte) rnd.nextInt(256);                                  // random byte (often invalid UTF-8)
                case 1 -> b[pos] = (byte) "{}[]\",:0123456789-eE.tn ".charAt(rnd.nextInt(24)); // JSON syntax characters
                case 2 -> { byte[] c = new byte[b.length - 1]; System.arraycopy(b, 0, c, 0, pos); System.arraycopy(b, pos + 1, c, pos, b.length - pos - 1); b = c; }
                default -> b = java.util.Arrays.copyOf(b, Math.max(1, pos));               // truncation
            }
        }
        out.writeBytes(b);
        return out.toByteArray();
    }

    private static void assertMessage(HttpResponse<String> r, String what) {
        try {
            JsonNode e = JSON.readTree(r.body()).get("error");
            assertNotNull(e, what + " → " + r.body());
            assertFalse(e.get("message").asText().isBlank(), what + " → " + r.body());
        } catch (java.io.IOException ex) {
            fail(what + " → not JSON: " + r.body());
        }
    }

    private static void normalRequestStillWorks() {
        HttpResponse<String> r = ts.post("/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"temperature\":0}");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().contains("\"text\":\", there was a little\""), r.body());
    }
}
