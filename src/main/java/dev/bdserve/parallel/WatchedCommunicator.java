package dev.bdserve.parallel;

import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Rank 0's communicator with a watchdog: when one collective waits longer than the timeout — a peer rank is stopped,
 * hung, or gone without the transport noticing (a collective over shared memory waits forever for a dead peer) — the
 * stall action runs once, on the watchdog's thread, while the collective is still blocked. The timeout bounds one
 * collective, not a step: between two collectives every rank computes the same share, so a healthy wait is short
 * even when a step is long.
 *
 * <p>Only rank 0 is watched: the other ranks wait in a broadcast for rank 0's next message for as long as it has no
 * work, which is no stall.
 */
public final class WatchedCommunicator implements Communicator {
    private final Communicator inner;
    private final long timeoutNanos;
    private final Thread watchdog;
    private volatile long since;                   // System.nanoTime() when the current collective began, 0 when none runs
    private volatile String current = "";
    private volatile Consumer<String> onStall;
    private volatile boolean fired, closed;

    public WatchedCommunicator(Communicator inner, Duration timeout) {
        this.inner = Objects.requireNonNull(inner, "inner");
        if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("the collective timeout must be positive");
        this.timeoutNanos = timeout.toNanos();
        long tick = Math.max(10, Math.min(250, timeout.toMillis() / 4));
        this.watchdog = Thread.ofPlatform().daemon().name("bdserve-collective-watchdog").start(() -> {
            while (!closed && !fired) {
                long s = since;
                if (s != 0 && System.nanoTime() - s > timeoutNanos) {
                    Consumer<String> action = onStall;
                    if (action != null) {
                        fired = true;
                        action.accept("rank 0's " + current + " waited more than " + timeout.toMillis() / 1000.0
                                + " s for the other ranks (a rank hung or was lost)");
                        return;
                    }
                }
                try { Thread.sleep(tick); } catch (InterruptedException e) { return; }
            }
        });
    }

    /** What to do when a collective stalls (e.g. fail the engine's requests); runs at most once. */
    public void onStall(Consumer<String> action) { this.onStall = action; }

    /** Whether a stall was reported. */
    public boolean stalled() { return fired; }

    private void begin(String what, Collective kind) {
        current = what + " (" + kind + ")";
        since = System.nanoTime();
    }

    private void end() { since = 0; }

    @Override public int rank() { return inner.rank(); }
    @Override public int size() { return inner.size(); }

    @Override
    public void allReduceSum(float[] buf, int off, int len, Collective what) {
        begin("all-reduce", what);
        try { inner.allReduceSum(buf, off, len, what); } finally { end(); }
    }

    @Override
    public void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff, Collective what) {
        begin("all-gather", what);
        try { inner.allGather(send, sendOff, len, recv, recvOff, what); } finally { end(); }
    }

    @Override
    public void broadcast(int[] buf, int off, int len, int root, Collective what) {
        begin("broadcast", what);
        try { inner.broadcast(buf, off, len, root, what); } finally { end(); }
    }

    @Override public CommStats stats() { return inner.stats(); }

    /** Stops the watchdog; the wrapped communicator is closed by its owner. */
    @Override
    public void close() {
        closed = true;
        watchdog.interrupt();
    }
}
