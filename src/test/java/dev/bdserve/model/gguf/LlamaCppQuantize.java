package dev.bdserve.model.gguf;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Quantizes a GGUF model with llama.cpp itself: {@code llama_model_quantize} of node-llama-cpp's prebuilt libllama,
 * called through python3's ctypes by the test resource {@code llamacpp_quantize.py} in a child process, so that an
 * abort inside llama.cpp ends that process and fails the test instead of killing the test JVM.
 */
final class LlamaCppQuantize {
    private LlamaCppQuantize() {}

    /** The {@code enum llama_ftype} values of llama.h that the tests use. */
    enum Ftype {
        F16(1), Q4_0(2), Q4_1(3), Q8_0(7), Q5_0(8), Q5_1(9), Q4_K_M(15), Q5_K_M(17), Q6_K(18), BF16(32);

        final int id;

        Ftype(int id) { this.id = id; }

        /** llama-quantize's name of the type: f16, q4_k_m, ... */
        String label() { return name().toLowerCase(Locale.ROOT); }
    }

    /** node-llama-cpp's prebuilt libllama, which exports llama.h's C API. */
    static Path libllama() {
        Path p = GgufTestFiles.root().resolve("node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so");
        if (!Files.exists(p))
            fail("llama.cpp install incomplete: " + p + " is missing. Set BDSERVE_LLAMACPP to the install, or make one: "
                    + GgufTestFiles.INSTALL.replace("DIR", GgufTestFiles.root().toString()));
        return p;
    }

    /** Writes {@code out}, {@code in} quantized by llama.cpp to {@code ftype} (one thread); fails the test on any error. */
    static void quantize(Path in, Path out, Ftype ftype) {
        Path script;
        try {
            script = Path.of(LlamaCppQuantize.class.getResource("llamacpp_quantize.py").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        Path log = out.resolveSibling(out.getFileName() + ".log");
        try {
            Process p = new ProcessBuilder("python3", script.toString(), libllama().toString(), in.toString(), out.toString(),
                    Integer.toString(ftype.id), "1").redirectErrorStream(true).redirectOutput(log.toFile()).start();
            p.getOutputStream().close();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("llama.cpp quantizing to " + ftype + " did not finish in 120 s");
            }
            if (p.exitValue() != 0)
                fail("llama.cpp quantizing " + in.getFileName() + " to " + ftype + " failed (exit " + p.exitValue() + "):\n"
                        + Files.readString(log, StandardCharsets.UTF_8));
            if (!Files.isRegularFile(out)) fail("llama.cpp quantizing to " + ftype + " wrote no file");
        } catch (IOException e) {
            fail("cannot run python3 for llama.cpp's quantizer: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
    }

    /** The tensor types in a GGUF file, read with bdserve's reader. */
    static Set<GgmlType> tensorTypes(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            Set<GgmlType> s = EnumSet.noneOf(GgmlType.class);
            for (GgufFile.TensorInfo t : f.tensors()) s.add(t.type());
            return s;
        }
    }

    /** "name: TYPE" of every tensor, for messages. */
    static String describeTypes(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            Set<String> s = new TreeSet<>();
            for (GgufFile.TensorInfo t : f.tensors()) s.add(t.name() + ": " + t.type());
            return String.join(", ", s);
        }
    }
}
