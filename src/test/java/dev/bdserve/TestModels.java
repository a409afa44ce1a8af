package dev.bdserve;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Locates the real models of ../shared/models for tests; a missing file fails the test (never a skip). */
public final class TestModels {
    private TestModels() {}

    public static Path root() {
        String env = System.getenv("BDSERVE_MODELS");
        Path p = env != null && !env.isBlank() ? Path.of(env) : Path.of("../shared/models");
        return p.toAbsolutePath().normalize();
    }

    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assertTrue(Files.exists(p), "test model file missing: " + p + " (set BDSERVE_MODELS to the shared models folder)");
        return p;
    }

    public static Path stories260K() { return require("stories260K/stories260K.bin"); }
}
