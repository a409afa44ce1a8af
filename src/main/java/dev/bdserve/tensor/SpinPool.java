package dev.bdserve.tensor;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A {@link Parallel} over a fixed set of daemon worker threads that spin on a generation counter.
 *
 * <p>Dispatch: the caller publishes an immutable loop description through a volatile field (the
 * generation). Each worker spins with {@link Thread#onSpinWait()} on the
 * counter; on a change it claims chunks of the loop from a shared counter until none are left, then
 * decrements a pending counter, on which the caller spins after running chunk 0 and claiming chunks itself. A loop is cut in
 * up to {@code chunksPerThread} chunks per thread, claimed dynamically: when the host deschedules one
 * thread for a while (2 shared vCPUs here), the other takes over its remaining chunks instead of waiting. A worker that sees no new loop for {@link #SPIN_NANOS} parks;
 * the caller unparks sleeping workers (Dekker handshake on volatile {@code sleeping} flags), so an idle
 * pool costs no CPU while a busy one dispatches in a few microseconds.
 *
 * <p>Re-entrancy: a {@code forRange} issued while this pool is already running a loop (a nested call
 * from a body, or a concurrent call from another thread) runs serially on the calling thread.
 *
 * <p>Exceptions thrown by a body (in any chunk) are rethrown in the caller after all chunks have
 * finished; further exceptions are attached as suppressed.
 */
public final class SpinPool implements Parallel {
    /** How long an idle worker spins before it parks (ns). */
    static final long SPIN_NANOS = 100_000;

    /**
     * One parallel loop, immutable, published to workers by the volatile write of {@link #task}.
     * Chunk c covers grain blocks [c*blocks/chunks, (c+1)*blocks/chunks); {@code next} is the next
     * unclaimed chunk and {@code participants} the number of threads (caller included) that claim.
     */
    private record Task(RangeBody body, int n, int grain, int chunks, int blocks, int participants, AtomicInteger next) {
        /**
         * Thread {@code index}'s share (0 = the caller): with no more chunks than threads, chunk {@code index};
         * else chunk 0 for the caller, then chunks claimed from {@code next} (starting at 1) until none are left.
         */
        void runShare(int index) {
            if (index == 0 || chunks == participants) {
                if (index < chunks) runChunk(index);
                if (chunks == participants) return;
            }
            for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) runChunk(c);
        }

        void runChunk(int c) {
            long b0 = (long) c * blocks / chunks, b1 = (long) (c + 1) * blocks / chunks;
            int start = (int) Math.min(n, b0 * grain), end = (int) Math.min(n, b1 * grain);
            if (start < end) body.run(start, end);
        }
    }

    private static final Task STOP = new Task((a, b) -> {}, 0, 1, 1, 1, 1, new AtomicInteger());

    private final int parallelism;
    private final int chunksPerThread;
    private final Worker[] workers;                 // [parallelism - 1]; worker i is thread i of a loop (runShare(i))
    private volatile Task task;                     // the latest loop (the "generation"); STOP on close
    private volatile boolean closed;
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final AtomicInteger busy = new AtomicInteger();   // 1 while a parallel loop is in flight

    /** Chunks per thread a loop is cut into by default (dynamic claiming evens out a descheduled thread). */
    public static final int DEFAULT_CHUNKS_PER_THREAD = 4;

    /** Creates a pool that runs loops on {@code threads} threads: the caller plus threads-1 workers. */
    public SpinPool(int threads) {
        this(threads, DEFAULT_CHUNKS_PER_THREAD);
    }

    /**
     * As {@link #SpinPool(int)}, cutting each loop into at most {@code chunksPerThread} × threads chunks
     * (1: one fixed chunk per thread).
     */
    public SpinPool(int threads, int chunksPerThread) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1: " + threads);
        if (chunksPerThread < 1) throw new IllegalArgumentException("chunksPerThread must be >= 1: " + chunksPerThread);
        this.parallelism = threads;
        this.chunksPerThread = chunksPerThread;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].thread.start();
        }
    }

    @Override public int parallelism() { return parallelism; }

    @Override
    public void forRange(int n, int grain, RangeBody body) {
        if (n <= 0) return;
        if (grain < 1) grain = 1;
        if (closed) throw new IllegalStateException("SpinPool is closed");
        int blocks = (int) Math.min(Integer.MAX_VALUE, ((long) n + grain - 1) / grain);
        int participants = Math.min(parallelism, blocks);
        if (participants <= 1 || !busy.compareAndSet(0, 1)) {  // one chunk, nested or concurrent: run inline
            body.run(0, n);
            return;
        }
        try {
            int chunks = (int) Math.min(blocks, (long) parallelism * chunksPerThread);
            Task t = new Task(body, n, grain, chunks, blocks, participants, new AtomicInteger(1));
            failure.set(null);
            pending.set(participants - 1);
            task = t;                                      // publish (volatile store, StoreLoad fence)
            for (int w = 0; w < participants - 1; w++) {
                Worker wk = workers[w];
                if (wk.sleeping) LockSupport.unpark(wk.thread);
            }
            Throwable mine = null;
            try {
                t.runShare(0);
            } catch (Throwable ex) {
                mine = ex;
            }
            awaitWorkers();
            Throwable theirs = failure.get();
            if (mine == null) mine = theirs;
            else if (theirs != null && theirs != mine) mine.addSuppressed(theirs);
            if (mine != null) rethrow(mine);
        } finally {
            busy.set(0);
        }
    }

    private void awaitWorkers() {
        int spins = 0;
        while (pending.get() != 0) {
            Thread.onSpinWait();
            if (++spins > 2_000) {  // a worker was descheduled (shared cores): let it run
                Thread.yield();
                spins = 0;
            }
        }
    }

    private static void rethrow(Throwable t) {
        if (t instanceof RuntimeException r) throw r;
        if (t instanceof Error e) throw e;
        throw new RuntimeException(t);
    }

    /** Stops and joins the workers. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        task = STOP;
        for (Worker w : workers) LockSupport.unpark(w.thread);
        for (Worker w : workers) {
            try {
                w.thread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** True while any worker thread is alive (for tests). */
    boolean workersAlive() {
        for (Worker w : workers) if (w.thread.isAlive()) return true;
        return false;
    }

    private final class Worker implements Runnable {
        final int index;
        final Thread thread;
        volatile boolean sleeping;

        Worker(int index) {
            this.index = index;
            this.thread = new Thread(this, "bdserve-worker-" + index);
            thread.setDaemon(true);
        }

        @Override
        public void run() {
            Task seen = null;   // the task at construction time (a late start must not skip the first loop)
            while (true) {
                Task t = awaitTask(seen);
                seen = t;
                if (t == STOP) return;
                if (index < t.participants()) {
                    try {
                        t.runShare(index);
                    } catch (Throwable ex) {
                        Throwable prev = failure.compareAndExchange(null, ex);
                        if (prev != null && prev != ex) prev.addSuppressed(ex);
                    } finally {
                        pending.decrementAndGet();
                    }
                }
            }
        }

        /** Spins, then parks, until the published task differs from {@code seen}; returns the new one. */
        private Task awaitTask(Task seen) {
            Task g = spin(seen);
            if (g != seen) return g;
            while (true) {
                sleeping = true;
                g = task;
                if (g != seen) {
                    sleeping = false;
                    return g;
                }
                LockSupport.parkNanos(this, 50_000_000L);
                sleeping = false;
                g = spin(seen);   // woken: likely new work, spin briefly again
                if (g != seen) return g;
            }
        }

        private Task spin(Task seen) {
            long deadline = System.nanoTime() + SPIN_NANOS;
            int i = 0;
            while (true) {
                Task g = task;
                if (g != seen) return g;
                Thread.onSpinWait();
                if ((++i & 63) == 0 && System.nanoTime() > deadline) return seen;
            }
        }
    }
}
