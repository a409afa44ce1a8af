package dev.bdserve.tensor.dnnl;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The native kernels on CPUs without bf16 dot products, made here by capping oneDNN's ISA in a child JVM
 * ({@code DNNL_MAX_CPU_ISA}). At AVX2, oneDNN 2.x builds no bf16 matmul: {@code auto} keeps the Java kernels saying
 * why and {@code native} is refused with the reason. At AVX-512 without BF16 (where the host has AVX-512 with it),
 * oneDNN emulates bf16: {@code auto} still keeps Java, saying so, and the forced native products are right.
 */
class NativeKernelsIsaTest {
    static String run(String isa) throws Exception {
        String cp = System.getProperty("surefire.test.class.path");
        if (cp == null || cp.isBlank()) cp = System.getProperty("java.class.path");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xmx256m", "-cp", cp, IsaCheck.class.getName()).redirectErrorStream(true);
        pb.environment().put("DNNL_MAX_CPU_ISA", isa);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), out);
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void withoutAvx512OneDnnBuildsNoBf16MatmulSoAutoKeepsJavaAndNativeIsRefused() throws Exception {
        if (Dnnl.load() instanceof Dnnl.Unavailable u && !u.reason().contains("builds no bf16 matmul"))
            fail("oneDNN 2.x is needed (apt-get install libdnnl-dev): " + u.reason());
        String out = run("AVX2");
        assertTrue(out.contains("auto: java (oneDNN not used: oneDNN 2."), out);
        assertTrue(out.contains("builds no bf16 matmul on this CPU"), out);
        assertTrue(out.contains("native refused: --kernels native: oneDNN 2."), out);
    }

    @Test
    void withEmulatedBf16AutoKeepsJavaAndForcedNativeProductsAreRight() throws Exception {
        Dnnl host = DnnlTestLibrary.require();
        String out = run("AVX512_CORE");
        assertTrue(out.contains("auto: java (oneDNN not used: "), out);
        if (!host.nativeBf16()) return;                   // the cap changes nothing here: the host's own case, tested elsewhere
        assertTrue(out.contains("this CPU has no bf16 dot products (oneDNN ISA 0x"), out);
        assertTrue(out.contains("so its bf16 matmul is emulated; --kernels native forces it)"), out);
        Matcher m = Pattern.compile("native worst relative error: (\\S+)").matcher(out);
        assertTrue(m.find(), out);
        assertTrue(Double.parseDouble(m.group(1)) <= 1e-5, out);
    }
}
