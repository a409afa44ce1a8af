package dev.bdserve.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** `bench decode --rounds`: every round pairs a decode run with probes of its own moment, end to end through the CLI. */
class BenchDecodeCommandTest {
    static JsonNode run(String... args) throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        java.io.StringWriter err = new java.io.StringWriter();
        int code;
        try {
            System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
            CommandLine cl = new CommandLine(new Main());
            cl.setErr(new java.io.PrintWriter(err, true));
            code = cl.execute(args);
        } finally {
            System.setOut(saved);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, out + err);
        return new ObjectMapper().readTree(out);
    }

    /** A tiny bf16 model written by `synth model`, through the same CLI. */
    static String tinyModel(Path dir) {
        CommandLine cl = new CommandLine(new Main());
        cl.setErr(new java.io.PrintWriter(new java.io.StringWriter()));
        assertEquals(0, cl.execute("synth", "model", "--shape", "tiny", "--dtype", "bf16", "--seed", "1", "--out", dir.toString()));
        return dir.toString();
    }

    @Test
    void pairedRoundsReportBothFractionsAtBatchAboveOne(@TempDir Path tmp) throws Exception {
        JsonNode j = run("bench", "decode", "--model", tinyModel(tmp), "--batch", "2", "--prompt-tokens", "3", "--gen-tokens", "3", "--warmup-seconds", "0.2", "--rounds", "3",
                "--kernels", "java");
        JsonNode pr = j.path("paired_rounds");
        assertEquals(3, pr.path("pairs").size(), j.toPrettyString());
        assertEquals("java", j.path("kernels").asText(), j.toString());
        assertTrue(j.path("weight_bytes_by_format").path("bf16").asLong() > 0, j.toString());
        double[] fr = new double[3];
        for (int i = 0; i < 3; i++) {
            JsonNode p = pr.path("pairs").get(i);
            assertTrue(p.path("decode_tokens_per_s").asDouble() > 0, p.toString());
            assertTrue(p.path("read_bandwidth_gbs").asDouble() > 0, p.toString());
            assertTrue(p.path("fma_peak_gflops").asDouble() > 0, p.toString());
            fr[i] = p.path("compute_peak_fraction").asDouble();
            assertTrue(fr[i] > 0 && fr[i] < 1.5, p.toString());
        }
        java.util.Arrays.sort(fr);
        assertEquals(fr[1], pr.path("compute_peak_fraction_median").asDouble(), 1e-9, pr.toString());
        assertTrue(pr.path("bandwidth_roofline_fraction_median").asDouble() > 0, pr.toString());
    }

    /**
     * `--kernels native` (oneDNN, which .ci/run installs) runs and says so, with the bf16 copies' size under
     * `--native-copies bf16`; an unknown choice is refused by name.
     */
    @Test
    void nativeKernelsAreReported(@TempDir Path tmp) throws Exception {
        dev.bdserve.tensor.dnnl.DnnlTestLibrary.require();
        JsonNode j = run("bench", "decode", "--model", tinyModel(tmp), "--batch", "4", "--prompt-tokens", "5", "--gen-tokens", "3", "--warmup-seconds", "0.2",
                "--kernels", "native");
        assertTrue(j.path("kernels").asText().startsWith("native (oneDNN 2."), j.toString());
        assertTrue(j.path("decode_tokens_per_s").asDouble() > 0, j.toString());
        JsonNode c = run("bench", "decode", "--model", tinyModel(tmp), "--quantize", "q8_0", "--batch", "8", "--prompt-tokens", "5", "--gen-tokens", "3",
                "--warmup-seconds", "0.2", "--kernels", "native", "--native-copies", "bf16");
        assertTrue(c.path("kernels").asText().matches("native \\(oneDNN 2\\..*\\); bf16 copies of quantized matrices: \\d+\\.\\d MiB"), c.toString());
        CommandLine cl = Main.commandLine();
        java.io.StringWriter err = new java.io.StringWriter();
        cl.setErr(new java.io.PrintWriter(err, true));
        assertEquals(2, cl.execute("bench", "decode", "--model", tinyModel(tmp), "--kernels", "gpu"), err.toString());
        assertTrue(err.toString().contains("--kernels must be auto, java or native, got 'gpu'"), err.toString());
        assertEquals(2, cl.execute("bench", "decode", "--model", tinyModel(tmp), "--native-copies", "fp8"), err.toString());
        assertTrue(err.toString().contains("--native-copies must be none or bf16, got 'fp8'"), err.toString());
    }

    /** Heap allocated per decode step, all threads: a figure (HotSpot counts it), never negative. */
    @Test
    void heapAllocatedPerStepIsReported(@TempDir Path tmp) throws Exception {
        JsonNode j = run("bench", "decode", "--model", tinyModel(tmp), "--batch", "2", "--prompt-tokens", "5", "--gen-tokens", "3", "--warmup-seconds", "0.2",
                "--no-probes");
        assertTrue(j.path("heap_mb_per_decode_step").isNumber() && j.path("heap_mb_per_decode_step").asDouble() >= 0, j.toString());
    }

    @Test
    void singleStreamRoundsCarryNoComputeFraction(@TempDir Path tmp) throws Exception {
        JsonNode pr = run("bench", "decode", "--model", tinyModel(tmp), "--batch", "1", "--prompt-tokens", "3", "--gen-tokens", "3", "--warmup-seconds", "0.2", "--rounds", "2")
                .path("paired_rounds");
        assertEquals(2, pr.path("pairs").size(), pr.toString());
        assertFalse(pr.path("pairs").get(0).has("compute_peak_fraction"), pr.toString());
        assertFalse(pr.has("compute_peak_fraction_median"), pr.toString());
    }

    /** `--vs-batch`: each round runs the other batch just before and reports the speed-up, and its median. */
    @Test
    void vsBatchReportsEachRoundsSpeedupAndTheMedian(@TempDir Path tmp) throws Exception {
        String model = tinyModel(tmp);
        JsonNode pr = run("bench", "decode", "--model", model, "--batch", "4", "--vs-batch", "1", "--prompt-tokens", "3", "--gen-tokens", "3",
                "--warmup-seconds", "0", "--rounds", "3").path("paired_rounds");
        assertEquals(3, pr.path("pairs").size(), pr.toString());
        double[] su = new double[3];
        for (int i = 0; i < 3; i++) {
            JsonNode p = pr.path("pairs").get(i);
            double batched = p.path("decode_tokens_per_s").asDouble(), single = p.path("decode_tokens_per_s_batch_1").asDouble();
            assertTrue(batched > 0 && single > 0, p.toString());
            su[i] = p.path("speedup_over_batch_1").asDouble();
            assertEquals(batched / single, su[i], 0.01 * su[i] + 2e-3, p.toString());   // both printed rounded to 3 decimals
            // the single stream's roofline fraction against the same probe (tiny here: the model is a few KB)
            assertTrue(p.path("bandwidth_roofline_fraction_batch_1").isNumber() && p.path("read_bandwidth_gbs").asDouble() > 0, p.toString());
        }
        java.util.Arrays.sort(su);
        assertEquals(su[1], pr.path("speedup_over_batch_1_median").asDouble(), 1e-9, pr.toString());
        assertTrue(pr.path("bandwidth_roofline_fraction_batch_1_median").isNumber(), pr.toString());

        JsonNode bare = run("bench", "decode", "--model", model, "--batch", "2", "--vs-batch", "1", "--prompt-tokens", "3", "--gen-tokens", "3",
                "--warmup-seconds", "0", "--rounds", "2", "--no-probes").path("paired_rounds");
        assertTrue(bare.path("speedup_over_batch_1_median").asDouble() > 0, bare.toString());
        assertFalse(bare.path("pairs").get(0).has("read_bandwidth_gbs"), "--no-probes: " + bare);
        assertFalse(bare.has("bandwidth_roofline_fraction_median"), bare.toString());
    }

    @Test
    void vsBatchWithoutRoundsIsRefused(@TempDir Path tmp) {
        CommandLine cl = new CommandLine(new Main());
        java.io.StringWriter err = new java.io.StringWriter();
        cl.setErr(new java.io.PrintWriter(err, true));
        int code = cl.execute("bench", "decode", "--model", tinyModel(tmp), "--batch", "4", "--vs-batch", "1", "--no-probes");
        assertNotEquals(0, code);
        assertTrue(err.toString().contains("--vs-batch needs"), err.toString());
    }

    /**
     * `--vs-tp 1` at TP 2: a TP 1 group on the same model runs before the TP 2 one in each round; the speed-up, the FMA
     * peak at both thread counts, their ratio and the speed-up over that ratio agree with each other, and the medians
     * are the middle rounds'.
     */
    @Test
    void vsTpSetsTheSpeedupAgainstTheHostsOwnScaling(@TempDir Path tmp) throws Exception {
        String model = tinyModel(tmp);
        JsonNode j = run("bench", "decode", "--model", model, "--tp", "2", "--threads", "2", "--vs-tp", "1", "--batch", "4",
                "--prompt-tokens", "3", "--gen-tokens", "3", "--warmup-seconds", "0", "--rounds", "3");
        JsonNode pr = j.path("paired_rounds");
        assertEquals("tp_1", pr.path("versus").path("label").asText(), pr.toString());
        assertEquals(1, pr.path("versus").path("tp").asInt(), pr.toString());
        assertEquals(1, pr.path("versus").path("threads").asInt(), pr.toString());
        assertEquals(3, pr.path("pairs").size(), pr.toString());
        double[] su = new double[3], sc = new double[3], of = new double[3];
        for (int i = 0; i < 3; i++) {
            JsonNode p = pr.path("pairs").get(i);
            double tp2 = p.path("decode_tokens_per_s").asDouble(), tp1 = p.path("decode_tokens_per_s_tp_1").asDouble();
            assertTrue(tp2 > 0 && tp1 > 0, p.toString());
            su[i] = p.path("speedup_over_tp_1").asDouble();
            assertEquals(tp2 / tp1, su[i], 0.01 * su[i] + 2e-3, p.toString());
            double two = p.path("fma_peak_gflops").asDouble(), one = p.path("fma_peak_gflops_1_threads").asDouble();
            assertTrue(two > 0 && one > 0, p.toString());
            sc[i] = p.path("fma_peak_scaling_over_tp_1").asDouble();
            assertEquals(two / one, sc[i], 0.01 * sc[i] + 2e-3, p.toString());
            of[i] = p.path("speedup_over_tp_1_over_fma_scaling").asDouble();
            assertEquals(su[i] / sc[i], of[i], 0.01 * of[i] + 2e-3, p.toString());
            assertFalse(p.has("bandwidth_roofline_fraction_tp_1"), p.toString());
        }
        for (double[] a : new double[][] {su, sc, of}) java.util.Arrays.sort(a);
        assertEquals(su[1], pr.path("speedup_over_tp_1_median").asDouble(), 1e-9, pr.toString());
        assertEquals(sc[1], pr.path("fma_peak_scaling_over_tp_1_median").asDouble(), 1e-9, pr.toString());
        assertEquals(of[1], pr.path("speedup_over_tp_1_over_fma_scaling_median").asDouble(), 1e-9, pr.toString());
        // the main group is the TP 2 one: two all-reduces per layer per decode step
        assertEquals(2, j.path("tp").asInt(), j.toString());
        assertTrue(j.path("collectives_per_decode_step").path("attn_out").asDouble() > 0, j.toString());

        // TP 1 on both threads (the batch-1 comparison), without probes: the speed-ups only
        JsonNode bare = run("bench", "decode", "--model", model, "--tp", "2", "--threads", "2", "--vs-tp", "1", "--vs-threads", "2", "--batch", "2",
                "--prompt-tokens", "3", "--gen-tokens", "3", "--warmup-seconds", "0", "--rounds", "2", "--no-probes").path("paired_rounds");
        assertEquals(2, bare.path("versus").path("threads").asInt(), bare.toString());
        assertEquals(1, bare.path("versus").path("tp").asInt(), bare.toString());
        assertTrue(bare.path("speedup_over_tp_1_median").asDouble() > 0, bare.toString());
        assertFalse(bare.path("pairs").get(0).has("fma_peak_gflops_1_threads"), "--no-probes: " + bare);
        assertFalse(bare.has("fma_peak_scaling_over_tp_1_median"), bare.toString());
    }

    @Test
    void vsTpIsRefusedWhereItCannotRun(@TempDir Path tmp) {
        String model = tinyModel(tmp);
        String[][] bad = {
            {"--tp", "2", "--vs-tp", "1"},                                         // no --rounds
            {"--tp", "2", "--vs-tp", "2", "--rounds", "2"},                        // the same degree
            {"--tp", "2", "--vs-tp", "1", "--rounds", "2", "--vs-batch", "1"},     // one comparison at a time
            {"--tp", "2", "--vs-tp", "1", "--rounds", "2", "--adapters", "1"},     // base-only
        };
        for (String[] extra : bad) {
            CommandLine cl = new CommandLine(new Main());
            java.io.StringWriter err = new java.io.StringWriter();
            cl.setErr(new java.io.PrintWriter(err, true));
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("bench", "decode", "--model", model, "--no-probes"),
                    java.util.Arrays.stream(extra)).toArray(String[]::new);
            assertNotEquals(0, cl.execute(args), String.join(" ", extra));
            assertTrue(err.toString().contains("--vs-tp needs"), String.join(" ", extra) + ": " + err);
        }
        CommandLine cl = new CommandLine(new Main());
        java.io.StringWriter err = new java.io.StringWriter();
        cl.setErr(new java.io.PrintWriter(err, true));
        assertNotEquals(0, cl.execute("bench", "decode", "--model", model, "--no-probes", "--rounds", "2", "--vs-threads", "2"));
        assertTrue(err.toString().contains("--vs-threads needs --vs-tp"), err.toString());
    }

    /** A second copy of the weights that the heap cannot hold is refused before loading, naming the sizes. */
    @Test
    void vsTpRefusesASecondCopyThatDoesNotFit() {
        assertEquals(null, BenchDecodeCommand.secondCopyRefusal(1_000_000_000L, 2_000_000_000L, 4_000_000_000L));
        String why = BenchDecodeCommand.secondCopyRefusal(16_000_000_000L, 2_000_000_000L, 18_000_000_000L);
        assertTrue(why != null && why.contains("16.0 GB of weights") && why.contains("2.0 GB of 18.0 GB") && why.contains("BDSERVE_HEAP"), why);
        assertTrue(BenchDecodeCommand.secondCopyRefusal(1_000_000_000L, 1_050_000_000L, 4_000_000_000L) != null, "no margin left");
    }

    /** `--compare-sharding` at TP 2: the mechanism's counts and ratios, the medians of paired steps among them. */
    @Test
    void compareShardingReportsTheMechanism(@TempDir Path tmp) throws Exception {
        JsonNode j = run("bench", "decode", "--model", tinyModel(tmp), "--tp", "2", "--compare-sharding", "--rank", "4", "--batch", "2",
                "--prompt-tokens", "3", "--gen-tokens", "4", "--warmup-seconds", "0", "--no-probes");
        JsonNode m = j.path("mechanism");
        int layers = j.path("runs").path("base").path("collectives_per_decode_step").path("attn_out").asInt();
        assertTrue(layers > 0, j.toString());
        assertEquals(0, m.path("bdlora_extra_collectives_per_step").asDouble(), m.toString());
        assertEquals(4.0 * layers, m.path("slora_extra_collectives_per_step").asDouble(), m.toString());
        for (String k : new String[] {"bdlora_over_base_step_time", "bdlora_over_base_median_paired_steps", "slora_over_bdlora_median_paired_steps",
                "slora_measured_over_predicted"})
            assertTrue(m.path(k).asDouble() > 0, k + " in " + m);
        assertEquals(0.0, j.path("warmup_seconds").asDouble(-1), j.toString());
        for (String run : new String[] {"replicated", "slora", "bdlora"})
            assertTrue(j.path("runs").path(run).path("step_time_over_base_median_paired_steps").asDouble() > 0, run + " in " + j);
        assertFalse(j.path("runs").path("base").has("step_time_over_base_median_paired_steps"), j.toString());
    }
}
