package dev.bdserve.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/** Locates the shared test models ($BDSERVE_MODELS, default ../shared/models); missing files FAIL the test. */
final class TestModels {
    private TestModels() {}

    static Path dir() {
        String env = System.getenv("BDSERVE_MODELS");
        return Path.of(env != null && !env.isBlank() ? env : "../shared/models").toAbsolutePath().normalize();
    }

    static Path require(String relative) {
        Path p = dir().resolve(relative);
        if (!Files.isRegularFile(p))
            fail("required test model file " + p + " is missing (set BDSERVE_MODELS to the shared models folder)");
        return p;
    }

    static Path tok512() { return require("stories260K/tok512.bin"); }
    static Path llama2() { return require("llama2-tokenizer/tokenizer.bin"); }
    static Path stories260K() { return require("stories260K/stories260K.bin"); }
}
