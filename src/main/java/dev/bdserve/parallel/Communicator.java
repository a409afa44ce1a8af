package dev.bdserve.parallel;

/**
 * Collectives among the ranks of a tensor-parallel group (spec §1). Every rank calls the same
 * collectives in the same order. Each call names where it comes from ({@link Collective}) so that
 * implementations can count calls, bytes and time per kind.
 */
public interface Communicator extends AutoCloseable {
    /** This rank's index in [0, size). */
    int rank();

    /** Number of ranks N. */
    int size();

    /** In-place sum over ranks of buf[off .. off+len). */
    void allReduceSum(float[] buf, int off, int len, Collective what);

    /**
     * Gathers each rank's {@code len} values from {@code send[sendOff ..]} into
     * {@code recv[recvOff + r*len ..]} for r = 0..size-1, on every rank.
     */
    void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff, Collective what);

    /** Copies root's buf[off .. off+len) to every rank. */
    void broadcast(int[] buf, int off, int len, int root, Collective what);

    /** Counters of the collectives issued through this communicator. */
    CommStats stats();

    @Override void close();
}
