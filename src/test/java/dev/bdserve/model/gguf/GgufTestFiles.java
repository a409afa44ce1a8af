package dev.bdserve.model.gguf;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Locates the llama.cpp install the GGUF tests compare against: {@code $BDSERVE_LLAMACPP}, default
 * {@code ../llamacpp} from the repository root, holding the llama.cpp sources (gguf-py, the ggml-vocab files) and
 * node-llama-cpp's prebuilt libggml-base. A missing install fails the test with how to make one (never a skip).
 */
public final class GgufTestFiles {
    private GgufTestFiles() {}

    static final String INSTALL = "mkdir -p DIR && cd DIR && npm install --omit=optional node-llama-cpp@3.22.1 "
            + "@node-llama-cpp/linux-x64@3.22.1 && git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp";

    public static Path root() {
        String env = System.getenv("BDSERVE_LLAMACPP");
        Path p = env != null && !env.isBlank() ? Path.of(env) : Path.of("../llamacpp");
        return p.toAbsolutePath().normalize();
    }

    private static Path require(Path p) {
        if (!Files.exists(p))
            fail("llama.cpp install incomplete: " + p + " is missing. Set BDSERVE_LLAMACPP to the install, or make one: "
                    + INSTALL.replace("DIR", root().toString()));
        return p;
    }

    /** The llama.cpp source tree. */
    public static Path llamaCpp() { return require(root().resolve("llama.cpp")); }

    /** A vocab-only GGUF file of llama.cpp's models folder, e.g. {@code vocab("llama-spm")}. */
    public static Path vocab(String name) { return require(llamaCpp().resolve("models/ggml-vocab-" + name + ".gguf")); }

    /** node-llama-cpp's prebuilt libggml-base.so, which holds llama.cpp's GGUF reader. */
    public static Path ggmlBase() {
        return require(root().resolve("node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"));
    }

    /** Runs the test resource gguf_tool.py with gguf-py on the path; fails the test on a non-zero exit. */
    public static void ggufTool(String... args) {
        Path gguf = require(llamaCpp().resolve("gguf-py"));
        Path script;
        try {
            script = Path.of(GgufTestFiles.class.getResource("gguf_tool.py").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        List<String> cmd = new ArrayList<>(List.of("python3", script.toString()));
        cmd.addAll(List.of(args));
        try {
            Path log = Files.createTempFile("gguf_tool", ".log");
            try {
                ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
                pb.environment().put("PYTHONPATH", gguf.toString());
                pb.environment().put("PYTHONIOENCODING", "utf-8");
                Process p = pb.start();
                p.getOutputStream().close();
                if (!p.waitFor(120, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    fail("gguf_tool.py " + String.join(" ", args) + " did not finish in 120 s");
                }
                if (p.exitValue() != 0)
                    fail("gguf_tool.py " + String.join(" ", args) + " failed (exit " + p.exitValue() + "; needs python3 with numpy):\n"
                            + Files.readString(log, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(log);
            }
        } catch (IOException e) {
            fail("cannot run python3 (needed with numpy for the gguf-py comparison): " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
    }
}
