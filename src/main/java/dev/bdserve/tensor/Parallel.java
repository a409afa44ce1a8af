package dev.bdserve.tensor;

/**
 * Runs data-parallel loops over a fixed set of worker threads. Passed in to kernels and the model:
 * there is no global pool. Implementations spin before they park, because a blocking wake-up costs
 * ≈ 20–25 µs on this machine, longer than many of the matrix products it would split.
 */
public interface Parallel extends AutoCloseable {
    /** Number of threads that run a loop (including the caller). */
    int parallelism();

    /**
     * Splits [0, n) into contiguous chunks whose boundaries are multiples of {@code grain} (except the
     * last), runs {@code body} on each on up to {@link #parallelism()} threads (the caller among them;
     * a thread may run several chunks, and which thread runs which chunk is not fixed), and returns when
     * all are done. Bodies must therefore not assume one chunk per thread.
     */
    void forRange(int n, int grain, RangeBody body);

    /** Body of a parallel loop over [start, end). */
    @FunctionalInterface
    interface RangeBody { void run(int start, int end); }

    @Override void close();

    /** A Parallel that runs everything on the calling thread. */
    static Parallel serial() {
        return new Parallel() {
            @Override public int parallelism() { return 1; }
            @Override public void forRange(int n, int grain, RangeBody body) { if (n > 0) body.run(0, n); }
            @Override public void close() {}
        };
    }
}
