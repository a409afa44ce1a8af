package dev.bdserve.parallel;

/** The communicator of a group of one: every collective is the identity (and is still counted). */
public final class SingleRank implements Communicator {
    private final CommStats stats = new CommStats();

    @Override public int rank() { return 0; }
    @Override public int size() { return 1; }

    @Override public void allReduceSum(float[] buf, int off, int len, Collective what) {
        stats.record(what, (long) len * Float.BYTES, 0);
    }

    @Override public void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff, Collective what) {
        if (send != recv || sendOff != recvOff) System.arraycopy(send, sendOff, recv, recvOff, len);
        stats.record(what, (long) len * Float.BYTES, 0);
    }

    @Override public void broadcast(int[] buf, int off, int len, int root, Collective what) {
        if (root != 0) throw new IllegalArgumentException("root " + root + " out of range for 1 rank");
        stats.record(what, (long) len * Integer.BYTES, 0);
    }

    @Override public CommStats stats() { return stats; }
    @Override public void close() {}
}
