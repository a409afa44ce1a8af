package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.lab.study.StudyGrid.Point;
import dev.bdserve.lab.study.StudyGrid.Settings;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The rows of results.jsonl: read back, matched to settings, and made from one decode run's JSON (one per strategy). */
public final class StudyResults {
    static final ObjectMapper JSON = new ObjectMapper();

    private StudyResults() {}

    /** Whether a result row was measured with these settings. */
    public static boolean matches(JsonNode j, Settings s) {
        return j.path("prompt_tokens").asInt() == s.promptTokens() && j.path("gen_tokens").asInt() == s.genTokens();
    }

    /** Every row of a results.jsonl (none if it does not exist); a line that is not JSON fails naming it. */
    public static List<JsonNode> readResults(Path f) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        if (!Files.exists(f)) return out;
        int n = 0;
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
            n++;
            if (line.isBlank()) continue;
            try {
                out.add(JSON.readTree(line));
            } catch (IOException e) {
                throw new IOException(f + " line " + n + " is not JSON: " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** A row's fields shared by every strategy of a run, and by the error row of a failed one. */
    static ObjectNode base(Point p, Settings s, String commit, double wall) {
        ObjectNode o = JSON.createObjectNode();
        o.put("point", p.key());
        o.put("time", Instant.now().toString());
        o.put("git_commit", commit);
        o.put("shape", p.shape());
        o.put("tp", p.tp());
        o.put("transport", p.transport().label);
        o.put("simulated", p.transport().simUs > 0);
        o.put("sim_latency_us", p.transport().simUs);
        o.put("kind", p.kind());
        o.put("batch", p.batch());
        o.put("adapters", p.adapters());
        o.put("prompt_tokens", s.promptTokens());
        o.put("gen_tokens", s.genTokens());
        o.put("run_wall_s", Math.round(wall * 10) / 10.0);
        o.put("load_avg_1m", HostInfo.loadAverage());
        return o;
    }

    /** One row per strategy of a decode run's JSON. */
    static List<ObjectNode> rows(Point p, Settings s, String commit, double wall, JsonNode j) {
        List<ObjectNode> out = new ArrayList<>();
        JsonNode ad = j.path("adapters");
        Map<String, JsonNode> runs = new LinkedHashMap<>();
        if (j.has("runs")) for (Iterator<Map.Entry<String, JsonNode>> it = j.get("runs").fields(); it.hasNext(); ) {
            var e = it.next();
            runs.put(e.getKey(), e.getValue());
        }
        else runs.put("base", j);
        for (var e : runs.entrySet()) {
            String strategy = e.getKey();
            if (p.kind().equals("bd2x")) {
                if (strategy.equals("base")) continue;
                strategy = "bdlora_2x";
            }
            JsonNode r = e.getValue();
            ObjectNode o = base(p, s, commit, wall);
            o.put("strategy", strategy);
            int rank = switch (strategy) {
                case "base" -> 0;
                case "replicated", "slora" -> ad.path("dense_rank").asInt();
                case "bdlora" -> ad.path("bd_rank_parameter_matched").asInt();
                default -> ad.path("rank").asInt();
            };
            o.put("lora_rank", rank);
            o.put("bd_nblocks", ad.path("bd_nblocks").asInt());
            long params = switch (strategy) {
                case "base" -> 0;
                case "replicated", "slora" -> ad.path("dense_params_each").asLong();
                case "bdlora" -> ad.path("bd_params_each").asLong();
                default -> ad.path("params_each").asLong();
            };
            o.put("adapter_params_each", params);
            for (String k : new String[] {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_ms_per_step", "collective_ms_per_decode_step",
                    "lora_ms_per_step", "lora_flops_per_step_rank0", "lora_bytes_per_step_rank0"})
                if (r.has(k)) o.set(k, r.get(k));
            o.put("params", j.path("params").asLong());
            o.put("weight_bytes_per_step_rank0", j.path("weight_bytes_per_step_rank0").asLong());
            // collectives per decode step by kind, and their bytes per step (per token from prefill, where every token crosses every layer once)
            ObjectNode counts = o.putObject("collectives_per_decode_step"), bytes = o.putObject("collective_bytes_per_decode_step");
            double total = 0, totalBytes = 0;
            long prefillTokens = (long) p.batch() * s.promptTokens();
            for (Iterator<Map.Entry<String, JsonNode>> it = r.path("collectives_per_decode_step").fields(); it.hasNext(); ) {
                var c = it.next();
                double n = c.getValue().asDouble();
                counts.put(c.getKey(), n);
                total += n;
                JsonNode pre = r.path("collectives_prefill").path(c.getKey());
                double b = c.getKey().equals("logits") ? pre.path("bytes").asDouble() // the last row of each sequence, as in a decode step
                        : pre.path("bytes").asDouble() / prefillTokens * p.batch();
                bytes.put(c.getKey(), Math.round(b));
                totalBytes += b;
            }
            o.put("collectives_per_step_total", total);
            o.put("collective_bytes_per_step_total", Math.round(totalBytes));
            double step = r.path("decode_ms_per_step").asDouble();
            o.put("collective_share", step > 0 ? r.path("collective_ms_per_decode_step").asDouble() / step : 0);
            if (j.has("slora_over_bdlora_step_time")) o.set("slora_over_bdlora_step_time", j.get("slora_over_bdlora_step_time"));
            if (strategy.equals("slora") && j.has("mechanism")) o.set("mechanism", j.get("mechanism"));   // latency floor, prediction
            o.put("jvm", j.path("jvm").asText());
            o.put("cores", j.path("cores").asInt());
            o.put("vector_bits", j.path("vector_bits").asInt());
            o.put("os_arch", j.path("os_arch").asText());
            o.put("machine", HostInfo.machine());
            if (strategy.equals("base") || p.kind().equals("bd2x")) o.set("raw_adapters", ad);
            out.add(o);
        }
        return out;
    }
}
