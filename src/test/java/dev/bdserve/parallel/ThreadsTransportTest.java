package dev.bdserve.parallel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

import static org.junit.jupiter.api.Assertions.*;

/** The threads transport's collectives with different data on every rank, chunking, and failure handling. */
class ThreadsTransportTest {

    static void runRanks(int n, IntConsumer body) {
        AtomicReference<Throwable> err = new AtomicReference<>();
        List<Thread> ts = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            int rank = r;
            ts.add(Thread.ofPlatform().start(() -> {
                try { body.accept(rank); } catch (Throwable t) { err.compareAndSet(null, t); }
            }));
        }
        for (Thread t : ts) {
            try { t.join(30_000); } catch (InterruptedException e) { throw new RuntimeException(e); }
            assertFalse(t.isAlive(), "a rank hung");
        }
        if (err.get() != null) throw new AssertionError(err.get());
    }

    @ParameterizedTest(name = "N={0} slot={1} len={2}")
    @CsvSource({"2, 1024, 300", "2, 7, 300", "3, 64, 1000", "4, 1024, 1", "4, 16, 100", "1, 8, 20"})
    void collectivesGiveExactResultsWithRankSpecificData(int n, int slot, int len) {
        try (ThreadsTransport tt = new ThreadsTransport(n, slot, 10_000_000_000L)) {
            runRanks(n, rank -> {
                Communicator c = tt.rank(rank);
                for (int iter = 0; iter < 50; iter++) {
                    float[] buf = new float[len + 3];
                    for (int i = 0; i < len; i++) buf[i + 2] = rank * 1000 + i + iter;
                    c.allReduceSum(buf, 2, len, Collective.ATTN_OUT);
                    for (int i = 0; i < len; i++) {
                        float expect = 0;
                        for (int r = 0; r < n; r++) expect += r * 1000 + i + iter;
                        assertEquals(expect, buf[i + 2], "allreduce element " + i);
                    }
                    assertEquals(0f, buf[0]);
                    assertEquals(0f, buf[len + 2]);
                    float[] send = new float[len];
                    for (int i = 0; i < len; i++) send[i] = rank * 7 + i * 0.5f;
                    float[] recv = new float[n * len + 1];
                    c.allGather(send, 0, len, recv, 1, Collective.LOGITS);
                    for (int r = 0; r < n; r++)
                        for (int i = 0; i < len; i++) assertEquals(r * 7 + i * 0.5f, recv[1 + r * len + i]);
                    int root = iter % n;
                    int[] msg = new int[len];
                    if (rank == root) for (int i = 0; i < len; i++) msg[i] = root * 31 + i;
                    c.broadcast(msg, 0, len, root, Collective.CONTROL);
                    for (int i = 0; i < len; i++) assertEquals(root * 31 + i, msg[i]);
                }
                assertEquals(50, c.stats().calls(Collective.ATTN_OUT));
                assertEquals(50L * len * 4, c.stats().bytes(Collective.LOGITS));
            });
        }
    }

    @Test
    void aFailedRankStopsTheOthersInsteadOfHanging() {
        try (ThreadsTransport tt = new ThreadsTransport(3, 64, 10_000_000_000L)) {
            AtomicReference<Throwable> seen = new AtomicReference<>();
            List<Thread> ts = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                int rank = r;
                ts.add(Thread.ofPlatform().start(() -> {
                    Communicator c = tt.rank(rank);
                    try {
                        if (rank == 2) { tt.fail(new RuntimeException("rank 2 crashed")); return; }
                        c.allReduceSum(new float[4], 0, 4, Collective.MLP_OUT);
                    } catch (TpGroupException e) {
                        seen.set(e);
                    }
                }));
            }
            for (Thread t : ts) {
                try { t.join(10_000); } catch (InterruptedException e) { throw new RuntimeException(e); }
                assertFalse(t.isAlive());
            }
            assertNotNull(seen.get());
            assertTrue(seen.get().getMessage().contains("rank 2 crashed"), seen.get().getMessage());
        }
    }

    @Test
    void aRankThatNeverArrivesIsNamedAfterTheTimeout() {
        try (ThreadsTransport tt = new ThreadsTransport(2, 64, 300_000_000L)) {
            TpGroupException e = assertThrows(TpGroupException.class,
                    () -> tt.rank(0).allReduceSum(new float[4], 0, 4, Collective.ATTN_OUT));
            assertTrue(e.getMessage().contains("rank(s) 1 did not reach"), e.getMessage());
        }
    }
}
