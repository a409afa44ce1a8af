package dev.bdserve.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SpinPoolTest {

    @ParameterizedTest
    @CsvSource({"1,100,1,4", "2,100,1,4", "2,1,1,4", "2,7,8,4", "2,17,8,4", "3,1000,16,4", "4,5,1,4", "4,64,16,4",
            "2,1000000,64,4", "2,100,1,1", "3,1000,16,1", "2,1000,1,16"})
    void coversEveryIndexExactlyOnceWithAlignedChunks(int threads, int n, int grain, int chunksPerThread) {
        try (SpinPool pool = new SpinPool(threads, chunksPerThread)) {
            int[] hits = new int[n];
            AtomicInteger calls = new AtomicInteger();
            pool.forRange(n, grain, (s, e) -> {
                calls.incrementAndGet();
                assertTrue(s < e, "empty chunk");
                assertEquals(0, s % grain, "chunk start not aligned to grain");
                assertTrue(e == n || e % grain == 0, "chunk end not aligned");
                for (int i = s; i < e; i++) hits[i]++;
            });
            for (int i = 0; i < n; i++) assertEquals(1, hits[i], "index " + i);
            int blocks = (n + grain - 1) / grain;
            assertEquals(Math.min(blocks, threads == 1 || blocks == 1 ? 1 : threads * chunksPerThread), calls.get());
        }
    }

    @Test
    void zeroLengthDoesNothing() {
        try (SpinPool pool = new SpinPool(2)) {
            pool.forRange(0, 4, (s, e) -> fail("called on empty range"));
            pool.forRange(-3, 4, (s, e) -> fail("called on negative range"));
        }
    }

    @Test
    void callerRunsChunkZeroAndWorkersAreNamedDaemons() {
        try (SpinPool pool = new SpinPool(3)) {
            ConcurrentHashMap<Integer, Thread> who = new ConcurrentHashMap<>();
            pool.forRange(12, 1, (s, e) -> {
                who.put(s, Thread.currentThread());
                if (s == 0) {   // hold chunk 0 until the workers have run the others
                    long end = System.nanoTime() + 5_000_000_000L;
                    while (who.size() < 12 && System.nanoTime() < end) Thread.onSpinWait();
                }
            });
            assertSame(Thread.currentThread(), who.get(0));
            assertEquals(12, who.size());
            for (int c = 1; c < 12; c++) {
                Thread t = who.get(c);
                assertTrue(t.isDaemon());
                assertTrue(t.getName().startsWith("bdserve-worker-"), t.getName());
                assertNotSame(Thread.currentThread(), t);
            }
        }
    }

    @Test
    void aThreadHeldUpLeavesItsShareToTheOthers() {
        try (SpinPool pool = new SpinPool(2, 4)) {
            ConcurrentHashMap<Integer, Thread> who = new ConcurrentHashMap<>();
            pool.forRange(8, 1, (s, e) -> {
                who.put(s, Thread.currentThread());
                if (s == 0) {   // the caller holds chunk 0 until the workers have taken every other chunk, its own share too
                    long end = System.nanoTime() + 30_000_000_000L;
                    while (who.size() < 8 && System.nanoTime() < end) Thread.onSpinWait();
                }
            });
            assertSame(Thread.currentThread(), who.get(0));
            for (int c = 1; c < 8; c++) assertNotSame(Thread.currentThread(), who.get(c), "chunk " + c + " waited for the caller");
        }
        try (SpinPool fixed = new SpinPool(2, 1)) {   // one chunk per thread: the caller's half stays with the caller
            ConcurrentHashMap<Integer, Thread> who = new ConcurrentHashMap<>();
            fixed.forRange(8, 1, (s, e) -> { for (int i = s; i < e; i++) who.put(i, Thread.currentThread()); });
            for (int i = 0; i < 4; i++) assertSame(Thread.currentThread(), who.get(i));
            for (int i = 4; i < 8; i++) assertNotSame(Thread.currentThread(), who.get(i));
        }
    }

    @Test
    void workerExceptionIsRethrownInCaller() {
        try (SpinPool pool = new SpinPool(2)) {
            IllegalStateException ex = assertThrows(IllegalStateException.class,
                    () -> pool.forRange(10, 1, (s, e) -> { if (s > 0) throw new IllegalStateException("boom " + s); }));
            assertTrue(ex.getMessage().startsWith("boom"));
            // the pool still works afterwards
            AtomicLong sum = new AtomicLong();
            pool.forRange(100, 1, (s, e) -> { for (int i = s; i < e; i++) sum.addAndGet(i); });
            assertEquals(4950, sum.get());
        }
    }

    @Test
    void callerExceptionWinsAndWaitsForWorkers() {
        try (SpinPool pool = new SpinPool(2)) {
            AtomicInteger done = new AtomicInteger();
            AssertionError err = assertThrows(AssertionError.class, () -> pool.forRange(2, 1, (s, e) -> {
                if (s == 0) throw new AssertionError("caller");
                try { Thread.sleep(20); } catch (InterruptedException ie) { throw new RuntimeException(ie); }
                done.incrementAndGet();
            }));
            assertEquals("caller", err.getMessage());
            assertEquals(1, done.get(), "forRange returned before the worker chunk finished");
        }
    }

    @Test
    void checkedThrowableFromBothSidesIsWrappedWithSuppressed() {
        try (SpinPool pool = new SpinPool(2)) {
            RuntimeException ex = assertThrows(RuntimeException.class, () -> pool.forRange(2, 1, (s, e) -> {
                throw new IllegalArgumentException("chunk " + s);
            }));
            assertEquals("chunk 0", ex.getMessage());
            assertEquals(1, ex.getSuppressed().length);
        }
    }

    @Test
    void nestedCallsRunInline() {
        try (SpinPool pool = new SpinPool(2)) {
            int[] hits = new int[64 * 64];
            pool.forRange(64, 1, (s, e) -> {
                for (int i = s; i < e; i++) {
                    int row = i;
                    pool.forRange(64, 4, (s2, e2) -> { for (int j = s2; j < e2; j++) hits[row * 64 + j]++; });
                }
            });
            for (int h : hits) assertEquals(1, h);
        }
    }

    @Test
    void manyRapidCallsAndSleepingWorkersWakeUp() throws Exception {
        try (SpinPool pool = new SpinPool(2)) {
            long[] acc = new long[2];
            for (int it = 0; it < 20_000; it++) {
                pool.forRange(2, 1, (s, e) -> acc[s]++);
            }
            assertEquals(20_000, acc[0]);
            assertEquals(20_000, acc[1]);
            Thread.sleep(5);   // > spin time: the worker parks
            pool.forRange(2, 1, (s, e) -> acc[s]++);
            assertEquals(20_001, acc[1]);
        }
    }

    @Test
    void closeStopsWorkers() throws Exception {
        SpinPool pool = new SpinPool(3);
        pool.forRange(3, 1, (s, e) -> {});
        pool.close();
        pool.close();
        assertThrows(IllegalStateException.class, () -> pool.forRange(3, 1, (s, e) -> {}));
        assertFalse(pool.workersAlive());
    }
}
