package dev.bdserve.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.LlamaCpp;
import dev.bdserve.model.gguf.GgufTestFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * `bench peer` end to end on stories260K as a GGUF file: bdserve and llama.cpp's prebuilt library (node-llama-cpp in
 * {@code $BDSERVE_LLAMACPP}, which {@code .ci/run} installs; missing, the test fails with how to install it).
 */
class PeerBenchCommandTest {
    private static final List<String> FIGURES = List.of("decode_tokens_per_s", "prefill_tokens_per_s", "batch_output_tokens_per_s");

    private static Path llamaCpp() {
        LlamaCpp.require("node_modules/node-llama-cpp/dist/index.js");
        return LlamaCpp.root();
    }

    @Test
    void bothEnginesRunEveryWorkloadAndTheRatiosFollow(@TempDir Path tmp) throws Exception {
        Path gguf = GgufTestFiles.stories260KGguf(tmp.resolve("stories260K.gguf"));
        JsonNode j = BenchDecodeCommandTest.run("bench", "peer", "--model", gguf.toString(), "--llamacpp", llamaCpp().toString(),
                "--threads", "2", "--rounds", "2", "--prompt-tokens", "16", "--decode-tokens", "4", "--batch-sequences", "3",
                "--batch-prompt-tokens", "8", "--batch-gen-tokens", "4", "--warmup-seconds", "0");
        assertEquals(gguf.toString(), j.path("model").asText(), j.toPrettyString());
        assertEquals(47, j.path("tensor_types").path("f32").asInt(), j.path("tensor_types").toString());
        assertEquals("f32", j.path("bdserve").path("weight_formats").path("lm_head").asText(), j.path("bdserve").toString());
        JsonNode peer = j.path("llama_cpp");
        assertEquals("node-llama-cpp 3.22.1", peer.path("package").asText(), peer.toString());
        assertFalse(peer.path("llama_cpp_release").asText().isEmpty(), peer.toString());
        assertEquals("prebuilt", peer.path("build_type").asText(), peer.toString());
        for (String k : List.of("cpu_model", "jvm", "vector_bits", "load_average_before", "load_average_after")) assertTrue(j.has(k), k + " in " + j);
        assertEquals(2, j.path("threads").asInt());
        assertEquals(8, j.path("workloads").path("batch").path("prompt_tokens").asInt(), j.path("workloads").toString());

        JsonNode rounds = j.path("per_round");
        assertEquals(2, rounds.size(), rounds.toString());
        assertEquals("bdserve", rounds.get(0).path("first").asText());
        assertEquals("llama_cpp", rounds.get(1).path("first").asText());
        for (JsonNode r : rounds)
            for (String f : FIGURES) {
                double b = r.path("bdserve").path(f).asDouble(), l = r.path("llama_cpp").path(f).asDouble();
                assertTrue(b > 0 && l > 0, f + " in " + r);
                assertEquals(b / l, r.path("bdserve_over_llama_cpp").path(f).asDouble(), 0.01 * b / l, f + " in " + r);
            }
        for (String f : FIGURES) {
            double mb = j.path("median").path("bdserve").path(f).asDouble(), ml = j.path("median").path("llama_cpp").path(f).asDouble();
            assertTrue(mb > 0 && ml > 0, f + " medians in " + j.path("median"));
            assertTrue(j.path("bdserve_over_llama_cpp").path(f).asDouble() > 0, f + " in " + j.path("bdserve_over_llama_cpp"));
            assertEquals(mb / ml, j.path("bdserve_over_llama_cpp_of_medians").path(f).asDouble(), 0.01 * mb / ml, f);
        }
    }

    /** `--workloads prefill`: only that figure, on both sides. */
    @Test
    void oneWorkloadReportsOnlyItsFigure(@TempDir Path tmp) throws Exception {
        Path gguf = GgufTestFiles.stories260KGguf(tmp.resolve("stories260K.gguf"));
        JsonNode j = BenchDecodeCommandTest.run("bench", "peer", "--model", gguf.toString(), "--llamacpp", llamaCpp().toString(),
                "--threads", "1", "--rounds", "1", "--workloads", "prefill", "--prompt-tokens", "8", "--warmup-seconds", "0");
        JsonNode r = j.path("per_round").get(0);
        for (String side : List.of("bdserve", "llama_cpp")) {
            assertEquals(List.of("prefill_tokens_per_s"), iterable(r.path(side)), r.toString());
            assertTrue(r.path(side).path("prefill_tokens_per_s").asDouble() > 0, r.toString());
        }
        assertEquals(List.of("prefill"), iterable(j.path("workloads")), j.path("workloads").toString());
    }

    /** Without an install, or on a file llama.cpp cannot read: exit 2 and one line that says what to do. */
    @Test
    void aMissingInstallOrANonGgufModelIsOneClearError(@TempDir Path tmp) {
        Path gguf = GgufTestFiles.stories260KGguf(tmp.resolve("stories260K.gguf"));
        String err = failing("bench", "peer", "--model", gguf.toString(), "--llamacpp", tmp.resolve("none").toString(), "--rounds", "1");
        assertTrue(err.contains("BDSERVE_LLAMACPP") && err.contains("npm install") && err.contains(".ci/run"), err);
        String folder = BenchDecodeCommandTest.tinyModel(tmp.resolve("hf"));                  // an HF folder, not a GGUF file
        err = failing("bench", "peer", "--model", folder, "--llamacpp", llamaCpp().toString(), "--rounds", "1");
        assertTrue(err.contains("needs a GGUF file"), err);
        err = failing("bench", "peer", "--model", gguf.toString(), "--workloads", "decode,speed");
        assertTrue(err.contains("unknown workload 'speed'"), err);
    }

    private static String failing(String... args) {
        CommandLine cl = Main.commandLine();
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        assertEquals(2, cl.execute(args), err.toString());
        return err.toString();
    }

    private static List<String> iterable(JsonNode o) {
        List<String> names = new java.util.ArrayList<>();
        o.fieldNames().forEachRemaining(names::add);
        return names;
    }
}
