package dev.bdserve.parallel;

/** The communicator of a group of one: every collective is the identity and costs nothing. */
public final class SingleRank implements Communicator {
    private long count;

    @Override public int rank() { return 0; }
    @Override public int size() { return 1; }
    @Override public void allReduceSum(float[] buf, int off, int len) { count++; }
    @Override public void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff) {
        count++;
        if (send != recv || sendOff != recvOff) System.arraycopy(send, sendOff, recv, recvOff, len);
    }
    @Override public void broadcast(float[] buf, int off, int len, int root) {
        if (root != 0) throw new IllegalArgumentException("root " + root + " out of range for 1 rank");
        count++;
    }
    @Override public long collectiveCount() { return count; }
    @Override public void close() {}
}
