package dev.bdserve;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Locates the llama.cpp reference the GGUF tests compare against: node-llama-cpp's prebuilt ggml libraries and
 * the llama.cpp sources of the same release, installed outside the repository in {@code $BDSERVE_LLAMACPP}
 * (default {@code ../llamacpp} from the repository root, where Maven runs the tests). {@code .ci/run} installs
 * it; a missing install fails the test with the command to install it (never a skip).
 */
public final class LlamaCpp {
    private LlamaCpp() {}

    /** The install command; DIR is {@link #root()}. */
    public static final String INSTALL = "mkdir -p DIR && cd DIR && npm install --omit=optional node-llama-cpp@3.22.1"
            + " @node-llama-cpp/linux-x64@3.22.1 && git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp";

    public static Path root() {
        String env = System.getenv("BDSERVE_LLAMACPP");
        Path p = env != null && !env.isBlank() ? Path.of(env) : Path.of("../llamacpp");
        return p.toAbsolutePath().normalize();
    }

    /** A file of the install, failing the test with how to install it when it is missing. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assertTrue(Files.exists(p), () -> "llama.cpp reference missing: " + p + ". Run .ci/run, or install it by hand: "
                + INSTALL.replace("DIR", root().toString()) + " (or set BDSERVE_LLAMACPP to an existing install)");
        return p;
    }

    /** ggml's base library (type traits, reference quantisers and dequantisers) of the linux-x64 build. */
    public static Path ggmlBase() {
        return require("node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so");
    }
}
