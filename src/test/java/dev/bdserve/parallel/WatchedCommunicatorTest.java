package dev.bdserve.parallel;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The collective watchdog fires once for a collective that waits too long, never for ones that return. */
class WatchedCommunicatorTest {

    /** One rank whose all-reduce blocks until released: a peer that never arrives. */
    static final class Blocking implements Communicator {
        final CountDownLatch release = new CountDownLatch(1);
        final SingleRank one = new SingleRank();

        @Override public int rank() { return 0; }
        @Override public int size() { return 2; }
        @Override public void allGather(float[] s, int so, int len, float[] r, int ro, Collective w) { one.allGather(s, so, len, r, ro, w); }
        @Override public void broadcast(int[] buf, int off, int len, int root, Collective w) { }
        @Override public CommStats stats() { return one.stats(); }
        @Override public void close() { }

        @Override
        public void allReduceSum(float[] buf, int off, int len, Collective what) {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Test
    void aStalledCollectiveIsReportedOnce() throws Exception {
        Blocking inner = new Blocking();
        try (WatchedCommunicator c = new WatchedCommunicator(inner, Duration.ofSeconds(2))) {
            CompletableFuture<String> fired = new CompletableFuture<>();
            c.onStall(fired::complete);
            for (int i = 0; i < 20; i++) c.broadcast(new int[2], 0, 2, 0, Collective.CONTROL);   // quick ones: no report (2 s leaves room for a GC pause or a stolen CPU)
            assertFalse(fired.isDone());
            Thread t = Thread.ofPlatform().start(() -> c.allReduceSum(new float[4], 0, 4, Collective.ATTN_OUT));
            String why = fired.get(30, TimeUnit.SECONDS);   // liveness bound
            assertTrue(why.contains("all-reduce (ATTN_OUT)") && why.contains("waited more than 2.0 s"), why);
            assertTrue(c.stalled());
            inner.release.countDown();
            t.join(30_000);
        }
    }

    @Test
    void slowButReturningCollectivesAreNoStall() throws Exception {
        try (WatchedCommunicator c = new WatchedCommunicator(new SingleRank(), Duration.ofSeconds(30))) {
            c.onStall(w -> fail("no stall expected: " + w));
            for (int i = 0; i < 100; i++) c.allReduceSum(new float[8], 0, 8, Collective.MLP_OUT);
            assertFalse(c.stalled());
        }
    }
}
