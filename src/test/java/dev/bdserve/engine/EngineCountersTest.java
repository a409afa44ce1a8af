package dev.bdserve.engine;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.*;

/** The counters are written by one thread and read by others: every read is a consistent, growing count. */
class EngineCountersTest {
    @Test
    void readersSeeGrowingCountsWhileTheStepThreadWrites() throws Exception {
        EngineCounters c = new EngineCounters();
        int n = 200_000;
        AtomicBoolean failed = new AtomicBoolean();
        Thread writer = Thread.ofPlatform().start(() -> {
            for (int i = 0; i < n; i++) {
                c.generated(i % 2 == 0 ? "a" : "");
                if (i % 4 == 0) c.finished(i % 8 == 0 ? "stop" : "length", "a", 3);
            }
        });
        Thread reader = Thread.ofPlatform().start(() -> {
            long last = 0;
            while (writer.isAlive()) {
                Map<String, EngineStats.AdapterCounters> m = c.byAdapter();
                long g = m.containsKey("a") ? m.get("a").generationTokens() : 0;
                if (g < last) failed.set(true);
                last = g;
                c.finishedByReason();
            }
        });
        writer.join();
        reader.join();
        assertFalse(failed.get(), "a count went backwards");
        assertEquals(n, c.generationTokens.sum());
        assertEquals(n / 2, c.byAdapter().get("a").generationTokens());
        assertEquals(n / 2, c.byAdapter().get("").generationTokens());
        assertEquals(n / 4, c.byAdapter().get("a").requests());
        assertEquals(3L * n / 4, c.byAdapter().get("a").promptTokens());
        assertEquals(Map.of("stop", (long) n / 8, "length", (long) n / 8), c.finishedByReason());
    }
}
