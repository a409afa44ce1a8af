package dev.bdserve.tensor.dnnl;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * oneDNN for the native-kernel tests: {@code .ci/run} installs it; missing, a test fails saying how to install it.
 * On a CPU without AVX-512, where oneDNN 2.x builds no bf16 matmul at all, the native products cannot run: such a
 * test is aborted with that reason (reported as skipped), and {@link NativeKernelsIsaTest} checks the refusal there.
 */
public final class DnnlTestLibrary {
    private DnnlTestLibrary() {}

    public static Dnnl require() {
        Dnnl.Loaded l = Dnnl.load();
        if (l instanceof Dnnl.Available a) return a.dnnl();
        String why = ((Dnnl.Unavailable) l).reason();
        Assumptions.assumeTrue(cpuHasAvx512Core(), "this CPU has no AVX-512 (avx512f/bw/vl/dq): oneDNN 2.x builds no bf16 matmul here, "
                + "so the native products cannot run (" + why + ")");
        return fail("the native-kernel tests need oneDNN 2.x (apt-get install libdnnl-dev; .ci/run installs it): " + why);
    }

    /** Whether /proc/cpuinfo lists the AVX-512 subset oneDNN's bf16 matmul needs; true where it cannot be read. */
    public static boolean cpuHasAvx512Core() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo")))
                if (line.startsWith("flags")) {
                    List<String> flags = List.of(line.substring(line.indexOf(':') + 1).trim().split("\\s+"));
                    return flags.containsAll(List.of("avx512f", "avx512bw", "avx512vl", "avx512dq"));
                }
        } catch (IOException | RuntimeException e) {
            // not Linux: treat as capable, so a missing library fails rather than skips
        }
        return true;
    }
}
