package dev.bdserve.parallel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@code threads} transport: N ranks inside one JVM exchanging data through one shared off-heap
 * segment (a slot of {@code slotFloats} floats per rank). A collective copies the rank's data into its
 * slot, meets the others at a barrier, reads every slot (in rank order, so every rank computes the same
 * sum bit for bit), and meets them again before the slots are reused. Larger collectives run in chunks.
 *
 * <p>Waits spin first (a blocking wake-up costs ≈ 20–25 µs here), then yield (so that TP 4 on 2 cores
 * does not stall), then park briefly once the wait is long (an idle group costs little CPU). A rank that
 * fails marks the group broken: every other rank's wait then throws instead of hanging, and a wait that
 * exceeds the timeout names the ranks that did not arrive.
 */
public final class ThreadsTransport implements AutoCloseable {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;

    private final int size;
    private final int slotFloats;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment slots;                 // [size][slotFloats] floats
    private final AtomicInteger arrived = new AtomicInteger();
    private final int[] arrivedAt;                     // per rank: the barrier generation it last reached
    private volatile int generation;                   // completed barriers
    private volatile Throwable failure;                // set once when a rank fails
    private final long timeoutNanos;

    /**
     * @param size        ranks N
     * @param slotFloats  floats per rank slot (collectives larger than this run in chunks)
     * @param timeoutNanos how long a data collective may wait for the other ranks before failing the group
     */
    public ThreadsTransport(int size, int slotFloats, long timeoutNanos) {
        if (size < 1) throw new IllegalArgumentException("size must be ≥ 1");
        if (slotFloats < 1) throw new IllegalArgumentException("slotFloats must be ≥ 1");
        this.size = size;
        this.slotFloats = slotFloats;
        this.timeoutNanos = timeoutNanos;
        this.slots = arena.allocate((long) size * slotFloats * Float.BYTES, 64);
        this.arrivedAt = new int[size];
    }

    /**
     * A transport whose data collectives give up after 120 s without the other ranks (a hung rank; a rank that
     * dies is noticed at once through {@link #fail}). Generous because one layer of a large prefill on a loaded
     * machine can legitimately keep a rank away for tens of seconds.
     */
    public ThreadsTransport(int size) { this(size, 1 << 20, 120_000_000_000L); }

    public int size() { return size; }

    /** The communicator of rank {@code r} (one per rank thread). */
    public Communicator rank(int r) {
        if (r < 0 || r >= size) throw new IllegalArgumentException("rank " + r + " of " + size);
        return new Rank(r);
    }

    /** Marks the group broken; every rank's pending or next collective throws. */
    public void fail(Throwable cause) {
        if (failure == null) failure = cause;
    }

    public Throwable failure() { return failure; }

    @Override public void close() {
        fail(new IllegalStateException("the tensor-parallel group was closed"));
        arena.close();
    }

    /** Waits until all ranks reach this barrier. {@code idle}: an open-ended wait (no timeout, parks sooner). */
    private void barrier(int rank, boolean idle) {
        int gen = generation;
        arrivedAt[rank] = gen + 1;
        if (arrived.incrementAndGet() == size) {
            arrived.set(0);
            generation = gen + 1;                          // releases the others
            return;
        }
        long start = 0;
        int spins = 0;
        while (generation == gen) {
            Throwable f = failure;
            if (f != null) throw new TpGroupException("tensor-parallel group failed: " + f.getMessage(), f);
            if (++spins < 2_000) { Thread.onSpinWait(); continue; }
            long now = System.nanoTime();
            if (start == 0) start = now;
            long waited = now - start;
            if (waited < 1_000_000) Thread.yield();
            else LockSupport.parkNanos(idle ? 200_000 : 20_000);
            if (!idle && waited > timeoutNanos) {
                StringBuilder missing = new StringBuilder();
                for (int r = 0; r < size; r++) if (arrivedAt[r] <= gen) missing.append(missing.isEmpty() ? "" : ", ").append(r);
                TpGroupException e = new TpGroupException("rank(s) " + missing + " did not reach a collective within "
                        + timeoutNanos / 1_000_000_000 + " s; the tensor-parallel group is stopped");
                fail(e);
                throw e;
            }
        }
    }

    private long slot(int r) { return (long) r * slotFloats * Float.BYTES; }

    private final class Rank implements Communicator {
        private final int rank;
        private final CommStats stats = new CommStats();
        private float[] tmp = new float[0];

        Rank(int rank) { this.rank = rank; }

        @Override public int rank() { return rank; }
        @Override public int size() { return size; }
        @Override public CommStats stats() { return stats; }

        @Override
        public void allReduceSum(float[] buf, int off, int len, Collective what) {
            long t0 = System.nanoTime();
            for (int c = 0; c < len; c += slotFloats) {
                int n = Math.min(slotFloats, len - c);
                MemorySegment.copy(buf, off + c, slots, F, slot(rank), n);
                barrier(rank, false);
                if (tmp.length < n) tmp = new float[n];
                MemorySegment.copy(slots, F, slot(0), buf, off + c, n);
                for (int r = 1; r < size; r++) {              // same order on every rank: identical sums
                    MemorySegment.copy(slots, F, slot(r), tmp, 0, n);
                    for (int i = 0; i < n; i++) buf[off + c + i] += tmp[i];
                }
                barrier(rank, false);
            }
            stats.record(what, (long) len * Float.BYTES, System.nanoTime() - t0);
        }

        @Override
        public void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff, Collective what) {
            long t0 = System.nanoTime();
            for (int c = 0; c < len; c += slotFloats) {
                int n = Math.min(slotFloats, len - c);
                MemorySegment.copy(send, sendOff + c, slots, F, slot(rank), n);
                barrier(rank, false);
                for (int r = 0; r < size; r++) MemorySegment.copy(slots, F, slot(r), recv, recvOff + r * len + c, n);
                barrier(rank, false);
            }
            stats.record(what, (long) len * Float.BYTES, System.nanoTime() - t0);
        }

        @Override
        public void broadcast(int[] buf, int off, int len, int root, Collective what) {
            if (root < 0 || root >= size) throw new IllegalArgumentException("root " + root + " of " + size);
            long t0 = System.nanoTime();
            boolean idle = what == Collective.CONTROL && rank != root; // a worker waiting for the next step
            for (int c = 0; c < len; c += slotFloats) {
                int n = Math.min(slotFloats, len - c);
                if (rank == root) MemorySegment.copy(buf, off + c, slots, I, slot(root), n);
                barrier(rank, idle);
                if (rank != root) MemorySegment.copy(slots, I, slot(root), buf, off + c, n);
                barrier(rank, false);
            }
            stats.record(what, (long) len * Integer.BYTES, System.nanoTime() - t0);
        }

        @Override public void close() {}
    }
}
