package dev.bdserve;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * No source file in src/main grows past 400 lines: a class that large has several jobs, and is split by job before it
 * grows (the engine-redesign rule, kept by the build rather than by review).
 */
class SourceSizeTest {
    static final int MAX_LINES = 400;

    static long lines(Path p) {
        try (Stream<String> s = Files.lines(p)) {
            return s.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void noMainSourceFileIsOver400Lines() throws IOException {
        Path root = Path.of("src/main/java");
        assertTrue(Files.isDirectory(root), "run from the project folder: " + root.toAbsolutePath() + " is missing");
        List<String> over;
        int files;
        try (Stream<Path> all = Files.walk(root)) {
            List<Path> java = all.filter(p -> p.toString().endsWith(".java")).toList();
            files = java.size();
            over = java.stream().filter(p -> lines(p) > MAX_LINES).map(p -> root.relativize(p) + " (" + lines(p) + " lines)").sorted().toList();
        }
        assertTrue(files > 100, "only " + files + " source files found under " + root);
        assertEquals(List.of(), over, "split these by job");
    }
}
