package dev.bdserve.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.tensor.VectorWidth;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ./bdserve}'s JVM (dev.bdserve.cli.Main) with {@value VectorWidth#PROPERTY} set, as {@code BDSERVE_JAVA_OPTS}
 * passes it: each case runs a fresh JVM, since the width is fixed when VectorWidth initialises.
 */
class VectorWidthCliTest {
    @TempDir Path tmp;

    /** The JVM's line on every start with an incubator module (./bdserve filters it out too). */
    static final String INCUBATOR_WARNING = "WARNING: Using incubator modules: jdk.incubator.vector";

    /** Exit code, stdout and stderr (without {@link #INCUBATOR_WARNING}) of one run. */
    record Run(int code, String out, String err) {}

    static Run main(String property, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(dev.bdserve.ChildJvm.mainCommand("-Xmx512m", "-D" + VectorWidth.PROPERTY + "=" + property));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("vw-out", ".txt"), err = Files.createTempFile("vw-err", ".txt");
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("bdserve " + String.join(" ", args) + " did not finish");
            }
            String e = Files.readString(err, StandardCharsets.UTF_8).replace(INCUBATOR_WARNING + "\n", "");
            return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), e);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** A width other than this host's, so a report of the host width instead of the chosen one fails. */
    static int otherThanHost() {
        return VectorWidth.HOST_BITS <= 128 ? 256 : 128;
    }

    @Test
    void benchReportsTheChosenWidthAndTheHosts() throws Exception {
        Run synth = main("128", "synth", "model", "--shape", "tiny", "--dtype", "bf16", "--seed", "1", "--out", tmp.resolve("m").toString());
        assertEquals(0, synth.code(), synth.out() + synth.err());
        int bits = otherThanHost();
        Run r = main(String.valueOf(bits), "bench", "decode", "--model", tmp.resolve("m").toString(), "--batch", "1",
                "--prompt-tokens", "3", "--gen-tokens", "3", "--warmup-seconds", "0", "--no-probes");
        assertEquals(0, r.code(), r.out() + r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(bits, j.path("vector_bits").asInt(), r.out());
        assertEquals(VectorWidth.HOST_BITS, j.path("host_vector_bits").asInt(), r.out());
        assertTrue(j.path("decode_tokens_per_s").asDouble() > 0, r.out());
    }

    @Test
    void aBadWidthStopsBeforeAnyCommandWithOneClearLine() throws Exception {
        Run r = main("300", "--version");
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals("", r.out());
        assertTrue(r.err().startsWith("bdserve: system property " + VectorWidth.PROPERTY + " is '300'"), r.err());
        assertTrue(r.err().contains("128, 256 or 512"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    @Test
    void aWidthWiderThanTheCpuIsWarnedAbout() {
        assertNull(Main.widthWarning(256, 256));
        assertNull(Main.widthWarning(128, 512));
        String w = Main.widthWarning(512, 256);
        assertNotNull(w);
        assertTrue(w.contains(VectorWidth.PROPERTY + "=512") && w.contains("256-bit") && w.contains("fallback"), w);
    }
}
