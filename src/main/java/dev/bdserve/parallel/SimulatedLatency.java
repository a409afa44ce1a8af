package dev.bdserve.parallel;

/**
 * Wraps a communicator so that every collective (base and LoRA alike, control messages excepted)
 * busy-waits {@code micros} µs more: a stand-in for a slower network when none is available (this
 * kernel has no tc netem). Figures obtained with it are labelled simulated.
 */
public final class SimulatedLatency implements Communicator {
    private final Communicator inner;
    private final long nanos;

    public SimulatedLatency(Communicator inner, double micros) {
        if (micros < 0) throw new IllegalArgumentException("latency must be ≥ 0");
        this.inner = inner;
        this.nanos = Math.round(micros * 1000);
    }

    private void delay(Collective what) {
        if (what == Collective.CONTROL || nanos == 0) return;
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() < end) Thread.onSpinWait();
    }

    @Override public int rank() { return inner.rank(); }
    @Override public int size() { return inner.size(); }

    @Override public void allReduceSum(float[] buf, int off, int len, Collective what) {
        delay(what);
        inner.allReduceSum(buf, off, len, what);
    }

    @Override public void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff, Collective what) {
        delay(what);
        inner.allGather(send, sendOff, len, recv, recvOff, what);
    }

    @Override public void broadcast(int[] buf, int off, int len, int root, Collective what) {
        delay(what);
        inner.broadcast(buf, off, len, root, what);
    }

    @Override public CommStats stats() { return inner.stats(); }
    @Override public void close() { inner.close(); }
}
