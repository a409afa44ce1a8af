package dev.bdserve.parallel.mpi;

import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.parallel.Communicator;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The tensor-parallel {@link Communicator} over Open MPI's {@code MPI_COMM_WORLD}, called through the FFM API
 * (no Java bindings jar: {@code libmpi.so.40} is bound directly, see {@link LibMpi}). Every collective is libmpi's
 * own: {@code MPI_Allreduce(MPI_IN_PLACE, .., MPI_FLOAT, MPI_SUM)}, {@code MPI_Allgather}, {@code MPI_Bcast},
 * {@code MPI_Barrier}.
 *
 * <h2>Lifecycle: one per process, explicit</h2>
 * MPI allows {@code MPI_Init} once per process and never again after {@code MPI_Finalize}. That is the only
 * process-wide state here: {@link #init()} may succeed once per JVM (a second call throws
 * {@link IllegalStateException}); it calls {@code MPI_Init_thread} and returns the object that owns the world
 * communicator. {@link #close()} calls {@code MPI_Finalize} (once; later calls do nothing). A process learns its rank
 * from {@link #rank()} after {@code init()}; before it, {@link #launchedByMpirun()} and {@link #mpirunRank()} read
 * Open MPI's launch environment ({@code OMPI_COMM_WORLD_RANK}/{@code _SIZE}).
 *
 * <h2>Threads</h2>
 * {@code MPI_THREAD_SERIALIZED} is requested and required: collectives are issued by one thread at a time, which need
 * not be the thread that called {@code init()} ({@code MPI_THREAD_FUNNELED} would require exactly that thread).
 * Like {@link CommStats}, an instance is confined to one thread at a time; callers must not overlap calls.
 *
 * <h2>Buffers</h2>
 * Float collectives (model data: every rank arrives within microseconds of the others) pass the Java array itself
 * to libmpi through a critical downcall ({@code Linker.Option.critical(true)}: heap segments allowed, no copy, no
 * thread-state transition; GC and safepoints wait for the call to return) when {@link Buffers#CRITICAL_HEAP}, or copy
 * the slice into a reusable off-heap segment and back when {@link Buffers#OFF_HEAP_COPY}. The default,
 * {@link Buffers#AUTO}, uses the critical path up to {@link #CRITICAL_MAX_FLOATS} floats and the copy path above (see
 * docs/mpi.md for the measurements behind this). The int {@linkplain #broadcast control broadcast} always
 * copies into off-heap memory and uses a normal downcall: a non-root rank may wait there for rank 0 for seconds
 * (between requests), and must not hold off the JVM's safepoints meanwhile.
 *
 * <h2>Errors</h2>
 * {@code MPI_ERRORS_RETURN} is set on the world communicator, every return code is checked, and failures throw
 * {@link MpiException} with the function name and {@code MPI_Error_string}'s text.
 */
public final class MpiCommunicator implements Communicator {
    /** How float collectives hand Java arrays to libmpi. */
    public enum Buffers {
        /** Pass the heap array through a critical downcall (zero copy). */
        CRITICAL_HEAP,
        /** Copy into a reusable off-heap segment, call, copy back. */
        OFF_HEAP_COPY,
        /** {@link #CRITICAL_HEAP} up to {@link #CRITICAL_MAX_FLOATS} floats per rank, {@link #OFF_HEAP_COPY} above. */
        AUTO
    }

    /**
     * Largest float count passed through a critical downcall under {@link Buffers#AUTO}. Larger messages take long
     * enough (hundreds of µs and up) that a copy is a small fraction of the call, and a critical call that long would
     * hold off this JVM's safepoints (GC of the other threads) for the whole transfer.
     */
    public static final int CRITICAL_MAX_FLOATS = 1 << 16;

    /** MPI_Init may run once per process: the one piece of process-wide state, imposed by MPI. */
    private static final AtomicBoolean INIT_CALLED = new AtomicBoolean();

    private final LibMpi mpi;
    private final int rank, size, threadLevel;
    private Buffers buffers;
    private final CommStats stats = new CommStats();
    private final Arena arena = Arena.ofShared();
    private final List<String> restoredSignals;
    private final String libraryVersion;
    /** Reusable off-heap staging buffer, grown on demand. */
    private MemorySegment scratch;
    /** Small off-heap cell for out-parameters. */
    private final MemorySegment cell;
    private boolean closed;

    private MpiCommunicator(LibMpi mpi, Buffers buffers, List<String> restoredSignals) {
        this.mpi = mpi;
        this.buffers = buffers;
        this.restoredSignals = List.copyOf(restoredSignals);
        this.cell = arena.allocate(JAVA_INT, 4);
        this.scratch = arena.allocate(4096, 64);
        try {
            check("MPI_Comm_set_errhandler", (int) mpi.commSetErrhandler.invokeExact(mpi.commWorld, mpi.errorsReturn));
            check("MPI_Comm_rank", (int) mpi.commRank.invokeExact(mpi.commWorld, cell));
            rank = cell.get(JAVA_INT, 0);
            check("MPI_Comm_size", (int) mpi.commSize.invokeExact(mpi.commWorld, cell));
            size = cell.get(JAVA_INT, 0);
            check("MPI_Query_thread", (int) mpi.queryThread.invokeExact(cell));
            threadLevel = cell.get(JAVA_INT, 0);
            MemorySegment v = arena.allocate(LibMpi.MPI_MAX_LIBRARY_VERSION_STRING + 1);
            check("MPI_Get_library_version", (int) mpi.libraryVersion.invokeExact(v, cell));
            libraryVersion = v.getString(0).strip();
        } catch (MpiException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@link #init(Buffers)} with {@link Buffers#AUTO}. */
    public static MpiCommunicator init() {
        return init(Buffers.AUTO);
    }

    /**
     * Loads libmpi, calls {@code MPI_Init_thread(MPI_THREAD_SERIALIZED)} and returns the world communicator. Once per
     * process. If MPI_Init replaced the JVM's handler of a signal HotSpot relies on (SIGSEGV, SIGBUS, ...: see
     * docs/mpi.md for the settings that prevent it), the JVM's handler is put back and a warning is printed; the
     * signals restored are in {@link #restoredSignals()}.
     *
     * @throws UnsatisfiedLinkError naming the packages to install when libmpi is missing
     * @throws IllegalStateException on a second call in the same process
     */
    public static MpiCommunicator init(Buffers buffers) {
        Objects.requireNonNull(buffers);
        LibMpi mpi = LibMpi.load();
        if (!INIT_CALLED.compareAndSet(false, true)) {
            throw new IllegalStateException("MpiCommunicator.init() was already called in this process: MPI_Init runs once per process");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment flag = a.allocate(JAVA_INT);
            checkStatic(mpi, "MPI_Initialized", (int) mpi.initialized.invokeExact(flag));
            if (flag.get(JAVA_INT, 0) != 0) throw new IllegalStateException("MPI was already initialised in this process by other code");
            SignalHandlers before = SignalHandlers.capture();
            MemorySegment provided = a.allocate(JAVA_INT);
            checkStatic(mpi, "MPI_Init_thread", (int) mpi.initThread.invokeExact(MemorySegment.NULL, MemorySegment.NULL,
                    LibMpi.MPI_THREAD_SERIALIZED, provided));
            int level = provided.get(JAVA_INT, 0);
            SignalHandlers after = SignalHandlers.capture();
            List<String> changed = after.changedSince(before);
            if (!changed.isEmpty()) {
                System.err.println("bdserve mpi: MPI_Init replaced the JVM's signal handlers (" + after.describe(before, changed)
                        + "); restored the JVM's. Launch with OMPI_MCA_opal_signal=6 UCX_ERROR_SIGNALS= OMPI_MCA_pml=ob1 "
                        + "(see docs/mpi.md) to keep MPI away from them.");
                before.restore(changed);
            }
            if (level < LibMpi.MPI_THREAD_SERIALIZED) {
                mpi.finalizeH.invokeExact();
                throw new IllegalStateException("MPI provides thread level " + level + " < MPI_THREAD_SERIALIZED (2)");
            }
            return new MpiCommunicator(mpi, buffers, changed);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** True when this process was started by Open MPI's mpirun/mpiexec (OMPI_COMM_WORLD_RANK is set). */
    public static boolean launchedByMpirun() {
        return System.getenv("OMPI_COMM_WORLD_RANK") != null;
    }

    /** This process's rank from Open MPI's launch environment, readable before {@link #init()}; -1 if not launched by mpirun. */
    public static int mpirunRank() {
        String r = System.getenv("OMPI_COMM_WORLD_RANK");
        return r == null ? -1 : Integer.parseInt(r.trim());
    }

    @Override public int rank() { return rank; }
    @Override public int size() { return size; }
    @Override public CommStats stats() { return stats; }

    /** The float buffer policy chosen at {@link #init(Buffers)}. */
    public Buffers buffers() { return buffers; }

    /** Switches the float buffer policy (for tests and the latency probe; every rank should switch alike). */
    public void setBuffers(Buffers buffers) { this.buffers = Objects.requireNonNull(buffers); }

    /** Thread level MPI provided (2 = MPI_THREAD_SERIALIZED, 3 = MPI_THREAD_MULTIPLE). */
    public int threadLevel() { return threadLevel; }

    /** {@code MPI_Get_library_version}, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ...". */
    public String libraryVersion() { return libraryVersion; }

    /** Path of the libmpi that was loaded. */
    public String libraryPath() { return mpi.path.toString(); }

    /** Signals whose JVM handler MPI_Init replaced and {@link #init} put back (empty with the documented settings). */
    public List<String> restoredSignals() { return restoredSignals; }

    @Override
    public void allReduceSum(float[] buf, int off, int len, Collective what) {
        Objects.checkFromIndexSize(off, len, buf.length);
        Objects.requireNonNull(what);
        ensureOpen();
        long t0 = System.nanoTime();
        int rc;
        try {
            if (critical(len)) {
                MemorySegment seg = MemorySegment.ofArray(buf).asSlice((long) off * Float.BYTES, (long) len * Float.BYTES);
                rc = (int) mpi.allreduceCritical.invokeExact(LibMpi.MPI_IN_PLACE, seg, len, mpi.mpiFloat, mpi.opSum, mpi.commWorld);
            } else {
                MemorySegment s = scratch((long) len * Float.BYTES);
                MemorySegment.copy(buf, off, s, JAVA_FLOAT, 0, len);
                rc = (int) mpi.allreduce.invokeExact(LibMpi.MPI_IN_PLACE, s, len, mpi.mpiFloat, mpi.opSum, mpi.commWorld);
                if (rc == LibMpi.MPI_SUCCESS) MemorySegment.copy(s, JAVA_FLOAT, 0, buf, off, len);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Allreduce", rc);
        stats.record(what, (long) len * Float.BYTES, System.nanoTime() - t0);
    }

    @Override
    public void allGather(float[] send, int sendOff, int len, float[] recv, int recvOff, Collective what) {
        Objects.checkFromIndexSize(sendOff, len, send.length);
        Objects.checkFromIndexSize(recvOff, (long) len * size, recv.length);
        Objects.requireNonNull(what);
        ensureOpen();
        long t0 = System.nanoTime();
        long total = (long) len * size;
        // MPI forbids overlapping send and receive buffers except through MPI_IN_PLACE (send already in its slot).
        boolean inPlace = send == recv && sendOff == recvOff + (long) rank * len;
        boolean overlap = !inPlace && send == recv && sendOff < recvOff + total && recvOff < sendOff + len;
        int rc;
        try {
            if (critical(len) && !overlap) {
                MemorySegment r = MemorySegment.ofArray(recv).asSlice((long) recvOff * Float.BYTES, total * Float.BYTES);
                MemorySegment s = inPlace ? LibMpi.MPI_IN_PLACE
                        : MemorySegment.ofArray(send).asSlice((long) sendOff * Float.BYTES, (long) len * Float.BYTES);
                rc = (int) mpi.allgatherCritical.invokeExact(s, len, mpi.mpiFloat, r, len, mpi.mpiFloat, mpi.commWorld);
            } else {
                MemorySegment sc = scratch(total * Float.BYTES);
                // receive region = sc[0, total); send staged in place at this rank's slot
                MemorySegment.copy(send, sendOff, sc, JAVA_FLOAT, (long) rank * len * Float.BYTES, len);
                rc = (int) mpi.allgather.invokeExact(LibMpi.MPI_IN_PLACE, len, mpi.mpiFloat, sc, len, mpi.mpiFloat, mpi.commWorld);
                if (rc == LibMpi.MPI_SUCCESS) MemorySegment.copy(sc, JAVA_FLOAT, 0, recv, recvOff, (int) total);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Allgather", rc);
        stats.record(what, (long) len * Float.BYTES, System.nanoTime() - t0);
    }

    /**
     * Copies root's {@code buf[off, off+len)} to every rank with {@code MPI_Bcast} on an off-heap copy through a normal
     * (non-critical) downcall: a rank may wait here a long time for the root, with safepoints and GC unaffected.
     */
    @Override
    public void broadcast(int[] buf, int off, int len, int root, Collective what) {
        Objects.checkFromIndexSize(off, len, buf.length);
        Objects.requireNonNull(what);
        if (root < 0 || root >= size) throw new IllegalArgumentException("root " + root + " out of range for " + size + " ranks");
        ensureOpen();
        long t0 = System.nanoTime();
        int rc;
        try {
            MemorySegment s = scratch((long) len * Integer.BYTES);
            if (rank == root) MemorySegment.copy(buf, off, s, JAVA_INT, 0, len);
            rc = (int) mpi.bcast.invokeExact(s, len, mpi.mpiInt, root, mpi.commWorld);
            if (rc == LibMpi.MPI_SUCCESS && rank != root) MemorySegment.copy(s, JAVA_INT, 0, buf, off, len);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Bcast", rc);
        stats.record(what, (long) len * Integer.BYTES, System.nanoTime() - t0);
    }

    /** MPI_Allreduce in place on an off-heap segment, no copy, not counted (latency baseline of {@link MpiLatencyProbe}). */
    void rawAllReduceSum(MemorySegment offHeap, int len) {
        ensureOpen();
        int rc;
        try {
            rc = (int) mpi.allreduce.invokeExact(LibMpi.MPI_IN_PLACE, offHeap, len, mpi.mpiFloat, mpi.opSum, mpi.commWorld);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Allreduce", rc);
    }

    /** MPI_Bcast with a negative count, to exercise the error path (the self-test expects an {@link MpiException}). */
    void invalidBroadcastForTest() {
        int rc;
        try {
            rc = (int) mpi.bcast.invokeExact(scratch(16), -1, mpi.mpiInt, 0, mpi.commWorld);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Bcast", rc);
    }

    /** {@code MPI_Barrier} on the world communicator (not counted in {@link #stats()}: it carries no data). */
    public void barrier() {
        ensureOpen();
        int rc;
        try {
            rc = (int) mpi.barrier.invokeExact(mpi.commWorld);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Barrier", rc);
    }

    /**
     * {@code MPI_Abort(MPI_COMM_WORLD, code)}: asks mpirun to kill every rank of the job with exit code {@code code}.
     * Does not return normally (if libmpi returns anyway, this throws).
     */
    public void abort(int code) {
        int rc;
        try {
            rc = (int) mpi.abortH.invokeExact(mpi.commWorld, code);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("MPI_Abort", rc);
        throw new MpiException("MPI_Abort(" + code + ") returned");
    }

    /** {@code MPI_Finalize}, once; every rank must call it (it is collective). Later calls do nothing. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        int rc;
        try {
            rc = (int) mpi.finalizeH.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        } finally {
            arena.close();
        }
        check("MPI_Finalize", rc);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "MpiCommunicator[rank %d of %d, %s, %s]", rank, size, buffers, libraryVersion);
    }

    private boolean critical(int len) {
        return switch (buffers) {
            case CRITICAL_HEAP -> true;
            case OFF_HEAP_COPY -> false;
            case AUTO -> len <= CRITICAL_MAX_FLOATS;
        };
    }

    private MemorySegment scratch(long bytes) {
        if (scratch.byteSize() < bytes) {
            long n = Math.max(bytes, scratch.byteSize() * 2);
            scratch = arena.allocate(n, 64); // the old one is freed with the arena; growth is geometric and rare
        }
        return scratch;
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("MpiCommunicator is closed (MPI_Finalize was called)");
    }

    private void check(String function, int rc) {
        if (rc != LibMpi.MPI_SUCCESS) throw new MpiException(function + " failed: " + errorString(mpi, rc) + " (error code " + rc + ")");
    }

    private static void checkStatic(LibMpi mpi, String function, int rc) {
        if (rc != LibMpi.MPI_SUCCESS) throw new MpiException(function + " failed: " + errorString(mpi, rc) + " (error code " + rc + ")");
    }

    private static String errorString(LibMpi mpi, int code) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(LibMpi.MPI_MAX_ERROR_STRING + 1);
            MemorySegment n = a.allocate(JAVA_INT);
            int rc = (int) mpi.errorString.invokeExact(code, s, n);
            return rc == LibMpi.MPI_SUCCESS ? s.getString(0) : "unknown MPI error";
        } catch (Throwable t) {
            return "unknown MPI error (" + t + ")";
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }
}
