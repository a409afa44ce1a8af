package dev.bdserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.bench.ServeBench.Config;
import dev.bdserve.bench.ServeBench.Output;
import dev.bdserve.bench.ServeBench.Prompt;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;

/** One streaming {@code /v1/completions} request of {@link ServeBench}, timed chunk by chunk (TTFT, inter-token gaps). */
final class ServeRequest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ServeRequest() {}

    /** Sends one streaming completion request and times its chunks. */
    static Output send(HttpClient client, URI uri, Config c, Prompt p, boolean constrained) {
        ObjectNode body = JSON.createObjectNode();
        if (c.llamaCppLora()) {                                  // llama-server: the base model, adapters by id and scale
            body.put("model", c.model());
            var lora = body.putArray("lora");
            int id = c.loraModules().indexOf(p.model());
            if (id >= 0) lora.addObject().put("id", id).put("scale", 1.0);
        } else {
            body.put("model", p.model());
        }
        body.put("prompt", p.text());
        body.put("temperature", 0.0);
        body.put("max_tokens", p.outputLen());
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (c.ignoreEos()) body.put("ignore_eos", true);
        if (constrained) {
            try {
                body.set("response_format", JSON.readTree(c.responseFormat()));
            } catch (IOException e) {
                throw new IllegalArgumentException("--response-format is not valid JSON: " + e.getMessage(), e);
            }
        }
        HttpRequest.Builder rb = HttpRequest.newBuilder(uri).timeout(c.requestTimeout())
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (c.apiKey() != null && !c.apiKey().isEmpty()) rb.header("Authorization", "Bearer " + c.apiKey());
        long st = System.nanoTime();
        double ttft = 0;
        List<Double> itl = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        int promptLen = p.promptLen(), chunks = 0, usageTokens = -1;
        try {
            HttpResponse<Stream<String>> resp = client.send(rb.build(), HttpResponse.BodyHandlers.ofLines());
            try (Stream<String> lines = resp.body()) {
                if (resp.statusCode() != 200) {
                    String err = String.join("\n", (Iterable<String>) lines::iterator);
                    return new Output(false, promptLen, 0, 0, List.of(), 0, "", "HTTP " + resp.statusCode() + " from " + uri + ": " + err);
                }
                long last = st;
                for (Iterator<String> it = lines.iterator(); it.hasNext(); ) {
                    String line = it.next().strip();
                    if (line.isEmpty() || line.startsWith(":")) continue;
                    if (!line.startsWith("data:")) continue;
                    String data = line.substring(5).strip();
                    // read on to the end of the body rather than break: closing the stream early cancels the
                    // body, and Java's HttpClient may then close the connection after it has already handed it
                    // to the next request (the server saw that request's client go away: a 499 here)
                    if (data.equals("[DONE]")) continue;
                    JsonNode j = JSON.readTree(data);
                    if (j.has("error")) return new Output(false, promptLen, 0, 0, List.of(), 0, text.toString(), "server error in stream: " + j.get("error"));
                    long now = System.nanoTime();
                    JsonNode choices = j.path("choices");
                    if (choices.isArray() && !choices.isEmpty()) {
                        JsonNode ch = choices.get(0);
                        String t = ch.has("text") ? ch.path("text").asText("") : ch.path("delta").path("content").asText("");
                        if (!t.isEmpty()) {
                            if (chunks == 0) ttft = (now - st) / 1e9;
                            else itl.add((now - last) / 1e9);
                            chunks++;
                            last = now;
                            text.append(t);
                        }
                    }
                    JsonNode usage = j.path("usage");
                    if (usage.isObject()) {
                        if (usage.has("completion_tokens")) usageTokens = usage.get("completion_tokens").asInt();
                        if (usage.has("prompt_tokens")) promptLen = usage.get("prompt_tokens").asInt();
                    }
                }
            }
        } catch (java.net.ConnectException e) {
            return new Output(false, promptLen, 0, 0, List.of(), 0, "", "cannot connect to " + uri + " (is the server running? " + e + ")");
        } catch (IOException e) {
            return new Output(false, promptLen, 0, 0, List.of(), 0, text.toString(), "request to " + uri + " failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Output(false, promptLen, 0, 0, List.of(), 0, text.toString(), "interrupted");
        }
        double latency = (System.nanoTime() - st) / 1e9;
        if (chunks == 0) return new Output(false, promptLen, 0, 0, List.of(), latency, "", "the stream from " + uri + " carried no text");
        int outTokens = usageTokens >= 0 ? usageTokens : chunks;
        return new Output(true, promptLen, outTokens, ttft, itl, latency, text.toString(), "");
    }
}
