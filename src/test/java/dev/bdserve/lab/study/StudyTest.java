package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** The study's grid, its JSON lines and its report, on a decode result shaped like `bench decode --compare-sharding` prints. */
class StudyTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path dir;

    @Test
    void gridsHaveUniqueKeysAndEveryBd2xFollowsItsCompareTwin() {
        for (boolean quick : new boolean[] {true, false}) {
            List<StudyGrid.Point> g = StudyGrid.grid(quick);
            Set<String> seen = new HashSet<>();
            for (StudyGrid.Point p : g) {
                assertTrue(seen.add(p.key()), "duplicate " + p.key());
                if (p.kind().equals("bd2x"))
                    assertTrue(seen.contains(new StudyGrid.Point(p.shape(), p.tp(), p.transport(), "compare", p.batch(), p.adapters()).key()), p.key());
                assertTrue(p.adapters() <= p.batch(), p.key());
            }
        }
        List<StudyGrid.Point> q = StudyGrid.grid(true);
        assertTrue(q.stream().anyMatch(p -> p.transport() == StudyGrid.Transport.MPI_TCP));
        assertTrue(q.stream().anyMatch(p -> p.transport() == StudyGrid.Transport.MPI_NETNS));
        assertTrue(q.stream().anyMatch(p -> p.transport().simUs == 100));
        assertTrue(StudyGrid.grid(false).stream().anyMatch(p -> p.shape().equals("llama-3.2-1b") && p.batch() == 64 && p.adapters() == 64));
    }

    static ObjectNode run(double step, double coll, Map<String, Double> counts, int batch, int prompt) {
        ObjectNode r = JSON.createObjectNode();
        r.put("prefill_tokens_per_s", 100.0).put("decode_tokens_per_s", 1000.0 * batch / step).put("decode_ms_per_step", step)
                .put("collective_ms_per_decode_step", coll);
        ObjectNode c = r.putObject("collectives_per_decode_step"), pre = r.putObject("collectives_prefill");
        counts.forEach((k, v) -> {
            c.put(k, v);
            // prefill bytes: 64 floats per token per call for layer collectives; the logits gather moves its rows once
            long bytes = k.equals("logits") ? 4L * 1000 * batch : (long) (v * 64 * 4 * batch * prompt);
            pre.putObject(k).put("calls", v.intValue()).put("bytes", bytes).put("seconds", 0.01);
        });
        if (counts.containsKey("lora_qkv") || step > 10) r.put("lora_ms_per_step", 1.0).put("lora_flops_per_step_rank0", 1000).put("lora_bytes_per_step_rank0", 500);
        return r;
    }

    static ObjectNode decodeJson(int batch, int prompt) {
        ObjectNode d = JSON.createObjectNode();
        d.put("params", 1_000_000).put("tp", 2).put("batch", batch).put("weight_bytes_per_step_rank0", 1_000_000);
        d.putObject("adapters").put("dense_rank", 16).put("dense_params_each", 1000).put("bd_nblocks", 2)
                .put("bd_rank_parameter_matched", 24).put("bd_params_each", 990).put("adapters", 1);
        Map<String, Double> base = Map.of("attn_out", 2.0, "mlp_out", 2.0, "logits", 1.0);
        Map<String, Double> sl = Map.of("attn_out", 2.0, "mlp_out", 2.0, "logits", 1.0, "lora_qkv", 2.0, "lora_o", 2.0, "lora_gate_up", 2.0, "lora_down", 2.0);
        ObjectNode runs = d.putObject("runs");
        runs.set("base", run(10, 2, base, batch, prompt));
        runs.set("replicated", run(12, 2, base, batch, prompt));
        runs.set("slora", run(16, 6, sl, batch, prompt));
        runs.set("bdlora", run(11, 2, base, batch, prompt));
        d.put("slora_over_bdlora_step_time", 16.0 / 11).put("jvm", "test JVM").put("os_arch", "amd64").put("cores", 2).put("vector_bits", 256);
        d.putObject("mechanism").put("us_per_collective", 50.0).put("slora_extra_collectives_per_step", 8.0);
        return d;
    }

    @Test
    void rowsPerStrategyWithCountsBytesAndShares() throws Exception {
        StudyGrid.Settings s = StudyGrid.settings(true);
        int batch = 4;
        var p = new StudyGrid.Point("llama-160m", 2, StudyGrid.Transport.THREADS, "compare", batch, 1);
        List<ObjectNode> rows = StudyResults.rows(p, s, "abc", 1.0, decodeJson(batch, s.promptTokens()));
        assertEquals(List.of("base", "replicated", "slora", "bdlora"), rows.stream().map(r -> r.get("strategy").asText()).toList());
        ObjectNode sl = rows.get(2), bd = rows.get(3);
        assertEquals(13.0, sl.get("collectives_per_step_total").asDouble());
        assertEquals(5.0, bd.get("collectives_per_step_total").asDouble());
        // per decode step: 64 floats × 4 bytes × batch per layer collective call, the logits gather as in prefill
        assertEquals(2 * 64 * 4 * batch, sl.get("collective_bytes_per_decode_step").get("attn_out").asLong());
        assertEquals(4L * 1000 * batch, sl.get("collective_bytes_per_decode_step").get("logits").asLong());
        assertEquals(6.0 / 16, sl.get("collective_share").asDouble(), 1e-12);
        assertEquals(16, sl.get("lora_rank").asInt());
        assertEquals(24, bd.get("lora_rank").asInt());
        assertEquals("abc", bd.get("git_commit").asText());
        assertEquals(s.promptTokens(), bd.get("prompt_tokens").asInt());
        assertEquals(50.0, sl.get("mechanism").get("us_per_collective").asDouble(), "the S-LoRA row keeps the latency floor");
        assertFalse(bd.has("mechanism"));
        // predicted S/BD: BD's 11 ms step + 8 extra collectives × 50 µs, over 11 ms
        assertEquals((11 + 8 * 0.05) / 11, StudyReport.predictedSOverBd(sl, bd), 1e-12);
        sl.remove("mechanism");   // older rows: rank 0's mean per collective (6 ms / 13) plus the simulated latency (0)
        assertEquals((11 + 8 * 6.0 / 13) / 11, StudyReport.predictedSOverBd(sl, bd), 1e-12);

        // bd2x runs keep only the adapter run, labelled bdlora_2x
        ObjectNode one = decodeJson(batch, s.promptTokens());
        ObjectNode lora = (ObjectNode) one.get("runs").get("bdlora");
        one.remove("runs");
        ObjectNode runs = one.putObject("runs");
        runs.set("base", run(10, 2, Map.of("attn_out", 2.0), batch, s.promptTokens()));
        runs.set("lora", lora);
        ((ObjectNode) one.get("adapters")).put("rank", 48);
        var p2 = new StudyGrid.Point("llama-160m", 2, StudyGrid.Transport.THREADS, "bd2x", batch, 1);
        List<ObjectNode> r2 = StudyResults.rows(p2, s, "abc", 1.0, one);
        assertEquals(1, r2.size());
        assertEquals("bdlora_2x", r2.getFirst().get("strategy").asText());
        assertEquals(48, r2.getFirst().get("lora_rank").asInt());
    }

    @Test
    void resultsResumeByPointAndSettingsAndTheReportDrawsPlots() throws Exception {
        Path out = dir.resolve("out");
        Files.createDirectories(out);
        Study st = new Study(dir, out, dir.resolve("models"), System.err);
        StudyGrid.Settings quick = StudyGrid.settings(true), full = StudyGrid.settings(false);
        StringBuilder lines = new StringBuilder();
        for (int b : new int[] {1, 4, 16})
            for (StudyGrid.Transport t : new StudyGrid.Transport[] {StudyGrid.Transport.THREADS, StudyGrid.Transport.SIM50})
                for (ObjectNode r : StudyResults.rows(new StudyGrid.Point("llama-160m", 2, t, "compare", b, 1), quick, "abc", 1.0, decodeJson(b, quick.promptTokens())))
                    lines.append(JSON.writeValueAsString(r)).append('\n');
        Files.writeString(st.results(), lines);
        Set<String> done = st.done(quick, false);
        assertTrue(done.contains("llama-160m/tp2/threads/compare/b4/a1"));
        assertTrue(st.done(full, false).isEmpty(), "the full grid's settings differ: nothing of it is done");

        String md = StudyReport.write(st.results(), out, "./bdserve bench study --quick", quick);
        assertTrue(md.contains("| llama-160m | 2 | sim-50us (simulated) | 4 | 1 |"), md);
        assertTrue(md.contains("Largest measured BD-LoRA advantage"), md);
        assertTrue(md.contains("### The regime map"), md);
        assertTrue(md.contains("| llama-160m | sim-50us (simulated) | 1.45 (1.04) | 1.45 (1.04) | 1.45 (1.04) |"), md);
        for (String png : List.of("throughput_vs_batch_llama-160m.png", "collective_share.png", "speedup_vs_latency.png")) {
            byte[] b = Files.readAllBytes(out.resolve(png));
            assertTrue(b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G', png);
        }
        assertTrue(Files.readString(out.resolve("README.md")).startsWith("# S-LoRA vs BD-LoRA"));
        JsonNode first = StudyResults.readResults(st.results()).getFirst();
        assertEquals("abc", first.get("git_commit").asText());
    }
}
