package dev.bdserve.parallel.mpi;

import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Multi-process check of {@link MpiCommunicator}, run under mpirun by {@code MpiCommunicatorTest} (see docs/mpi.md);
 * by hand, after {@code mvn test-compile}:
 * <pre>mpirun -np 2 ... java --enable-native-access=ALL-UNNAMED -cp target/classes:target/test-classes dev.bdserve.parallel.mpi.MpiSelfTest [iterations]</pre>
 * Every rank fills buffers with rank-specific data, runs allReduceSum, allGather (plain, in place, sub-ranges) and
 * broadcast (from rank 0 and from the last rank) of 1, 7, 300 and 100 000 elements at offsets inside larger arrays,
 * under each {@link MpiCommunicator.Buffers} policy, and checks every element (and that the elements around the range
 * are untouched) and the {@link CommStats} counters. It also checks that the JVM's own signal handling works in the
 * MPI process: caught implicit-null-check NPEs and StackOverflowErrors (both SIGSEGV-based in HotSpot), System.gc()
 * and a concurrently allocating thread (safepoints), and that the JVM's signal handlers are still installed at the end.
 * Rank 0 prints {@code MPI SELFTEST PASS ...} and every rank exits 0 only when every rank passed.
 */
public final class MpiSelfTest {
    static final int[] SIZES = {1, 7, 300, 100_000};
    static final int PAD = 5;
    static final float FSENT = -12345.5f;
    static final int ISENT = -777;

    private final MpiCommunicator comm;
    private final int rank, size;
    private final List<String> failures = new ArrayList<>();
    private long checks;
    private long expReduce, expGather, expBcast, expReduceBytes, expGatherBytes, expBcastBytes;

    MpiSelfTest(MpiCommunicator comm) {
        this.comm = comm;
        this.rank = comm.rank();
        this.size = comm.size();
    }

    public static void main(String[] args) {
        int iterations = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        SignalHandlers jvmHandlers = SignalHandlers.capture();
        MpiCommunicator comm = MpiCommunicator.init();
        int failed;
        String summary;
        try {
            MpiSelfTest t = new MpiSelfTest(comm);
            long t0 = System.nanoTime();
            t.jvmSignalsWork("after MPI_Init");
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong allocated = new AtomicLong();
            Thread allocator = Thread.ofPlatform().daemon().name("allocator").start(() -> {
                // keeps the GC (and thus safepoints) busy while the main thread is inside MPI calls
                List<int[]> keep = new ArrayList<>();
                while (!stop.get()) {
                    keep.add(new int[1 << 14]);
                    if (keep.size() > 256) keep.clear();
                    allocated.incrementAndGet();
                }
            });
            for (MpiCommunicator.Buffers b : MpiCommunicator.Buffers.values()) {
                comm.setBuffers(b);
                for (int it = 0; it < iterations; it++) t.round(it);
                t.inPlaceAndOverlap();
            }
            stop.set(true);
            allocator.join();
            t.jvmSignalsWork("after the collectives");
            List<String> changed = SignalHandlers.capture().changedSince(jvmHandlers);
            changed.removeAll(comm.restoredSignals()); // already reported by init()
            if (!changed.isEmpty()) t.fail("JVM signal handlers replaced during the run: " + changed);
            if (!comm.restoredSignals().isEmpty()) {
                t.fail("MPI_Init replaced the JVM's handlers of " + comm.restoredSignals() + " (restored; launch settings missing?)");
            }
            t.errorReporting();
            t.checkStats();
            for (String f : t.failures.subList(0, Math.min(10, t.failures.size()))) System.err.println("rank " + t.rank + ": FAIL " + f);
            // every rank learns whether any rank failed
            float[] bad = {t.failures.size()};
            comm.allReduceSum(bad, 0, 1, Collective.CONTROL);
            failed = (int) bad[0];
            summary = String.format(Locale.ROOT,
                    "MPI SELFTEST %s ranks=%d iterations=%d checks=%d failures=%d seconds=%.2f allocations=%d lib=\"%s\"",
                    failed == 0 ? "PASS" : "FAIL", t.size, iterations, t.checks, failed, (System.nanoTime() - t0) / 1e9,
                    allocated.get(), comm.libraryVersion().lines().findFirst().orElse(""));
        } catch (Throwable e) {
            e.printStackTrace();
            System.err.println("rank " + comm.rank() + ": MPI SELFTEST ERROR " + e);
            comm.abort(3);
            return;
        }
        int r = comm.rank();
        comm.close();
        if (r == 0) System.out.println(summary);
        System.out.flush();
        System.exit(failed == 0 ? 0 : 1);
    }

    void round(int it) {
        for (int n : SIZES) {
            allReduce(n, it);
            allGather(n, it);
            broadcast(n, it, 0);
            broadcast(n, it, size - 1);
        }
    }

    static float reduceValue(int r, int i, int it) {
        return (r + 1) * 1000 + (i % 997) + (it % 7) - 300; // small integers: every sum is exact in float
    }

    static float gatherValue(int r, int i, int it) {
        return r * 200_000 + i + (it % 3); // < 2^24: exact
    }

    static int bcastValue(int root, int i, int it) {
        return root * 1_000_000 + i * 3 + it;
    }

    void allReduce(int n, int it) {
        float[] buf = new float[n + 2 * PAD];
        java.util.Arrays.fill(buf, FSENT);
        for (int i = 0; i < n; i++) buf[PAD + i] = reduceValue(rank, i, it);
        comm.allReduceSum(buf, PAD, n, Collective.ATTN_OUT);
        expReduce++;
        expReduceBytes += 4L * n;
        for (int i = 0; i < n; i++) {
            float want = 0;
            for (int r = 0; r < size; r++) want += reduceValue(r, i, it);
            checks++;
            if (buf[PAD + i] != want) fail(String.format(Locale.ROOT, "allReduce n=%d it=%d i=%d got %s want %s", n, it, i, buf[PAD + i], want));
        }
        sentinels(buf, PAD, n, "allReduce");
    }

    void allGather(int n, int it) {
        float[] send = new float[n + 3];
        java.util.Arrays.fill(send, FSENT);
        for (int i = 0; i < n; i++) send[2 + i] = gatherValue(rank, i, it);
        float[] recv = new float[n * size + 2 * PAD];
        java.util.Arrays.fill(recv, FSENT);
        comm.allGather(send, 2, n, recv, PAD, Collective.LOGITS);
        expGather++;
        expGatherBytes += 4L * n;
        for (int r = 0; r < size; r++) {
            for (int i = 0; i < n; i++) {
                float got = recv[PAD + r * n + i];
                checks++;
                if (got != gatherValue(r, i, it)) fail(String.format(Locale.ROOT, "allGather n=%d it=%d r=%d i=%d got %s", n, it, r, i, got));
            }
        }
        sentinels(recv, PAD, n * size, "allGather");
        for (int i = 0; i < n; i++) {
            checks++;
            if (send[2 + i] != gatherValue(rank, i, it)) fail("allGather modified send[" + i + "]");
        }
    }

    void broadcast(int n, int it, int root) {
        int[] buf = new int[n + 2 * PAD];
        java.util.Arrays.fill(buf, ISENT);
        for (int i = 0; i < n; i++) buf[PAD + i] = rank == root ? bcastValue(root, i, it) : -rank - 1;
        comm.broadcast(buf, PAD, n, root, Collective.CONTROL);
        expBcast++;
        expBcastBytes += 4L * n;
        for (int i = 0; i < n; i++) {
            checks++;
            if (buf[PAD + i] != bcastValue(root, i, it)) fail(String.format(Locale.ROOT, "broadcast root=%d n=%d it=%d i=%d got %d", root, n, it, i, buf[PAD + i]));
        }
        for (int i = 0; i < PAD; i++) {
            expect(buf[i] == ISENT && buf[PAD + n + i] == ISENT, "broadcast root=%d n=%d wrote outside its range", root, n);
        }
    }

    /** allGather whose send slice is this rank's slot of recv (MPI_IN_PLACE), and one overlapping it elsewhere. */
    void inPlaceAndOverlap() {
        for (int n : SIZES) {
            float[] buf = new float[n * size + 2 * PAD];
            java.util.Arrays.fill(buf, FSENT);
            for (int i = 0; i < n; i++) buf[PAD + rank * n + i] = gatherValue(rank, i, 1);
            comm.allGather(buf, PAD + rank * n, n, buf, PAD, Collective.LORA_QKV);
            expGather++;
            expGatherBytes += 4L * n;
            for (int r = 0; r < size; r++) {
                for (int i = 0; i < n; i++) {
                    checks++;
                    if (buf[PAD + r * n + i] != gatherValue(r, i, 1)) fail("in-place allGather n=" + n + " r=" + r + " i=" + i);
                }
            }
            sentinels(buf, PAD, n * size, "in-place allGather");

            // send = the first n elements of recv's range (overlaps every rank's slot 0 but is only in place on rank 0)
            float[] o = new float[n * size + 2 * PAD];
            java.util.Arrays.fill(o, FSENT);
            for (int i = 0; i < n; i++) o[PAD + i] = gatherValue(rank, i, 2);
            comm.allGather(o, PAD, n, o, PAD, Collective.LORA_QKV);
            expGather++;
            expGatherBytes += 4L * n;
            for (int r = 0; r < size; r++) {
                for (int i = 0; i < n; i++) {
                    checks++;
                    if (o[PAD + r * n + i] != gatherValue(r, i, 2)) fail("overlapping allGather n=" + n + " r=" + r + " i=" + i);
                }
            }
            sentinels(o, PAD, n * size, "overlapping allGather");
        }
    }

    /** A failing MPI call must throw MpiException naming the function and carrying MPI_Error_string's text. */
    void errorReporting() {
        try {
            comm.invalidBroadcastForTest();
            fail("MPI_Bcast with count -1 did not fail");
        } catch (MpiException e) {
            String m = e.getMessage();
            expect(m.startsWith("MPI_Bcast failed: ") && m.toLowerCase(Locale.ROOT).contains("count"), "error message: %s", m);
        }
        try {
            comm.broadcast(new int[1], 0, 1, size, Collective.CONTROL);
            fail("broadcast from root " + size + " did not fail");
        } catch (IllegalArgumentException e) {
            checks++;
        }
    }

    void checkStats() {
        CommStats s = comm.stats();
        long gathers = s.calls(Collective.LOGITS) + s.calls(Collective.LORA_QKV);
        long gatherBytes = s.bytes(Collective.LOGITS) + s.bytes(Collective.LORA_QKV);
        expect(s.calls(Collective.ATTN_OUT) == expReduce, "stats ATTN_OUT calls %d want %d", s.calls(Collective.ATTN_OUT), expReduce);
        expect(s.bytes(Collective.ATTN_OUT) == expReduceBytes, "stats ATTN_OUT bytes %d want %d", s.bytes(Collective.ATTN_OUT), expReduceBytes);
        expect(gathers == expGather, "stats allGather calls %d want %d", gathers, expGather);
        expect(gatherBytes == expGatherBytes, "stats allGather bytes %d want %d", gatherBytes, expGatherBytes);
        expect(s.calls(Collective.CONTROL) == expBcast, "stats CONTROL calls %d want %d", s.calls(Collective.CONTROL), expBcast);
        expect(s.bytes(Collective.CONTROL) == expBcastBytes, "stats CONTROL bytes %d want %d", s.bytes(Collective.CONTROL), expBcastBytes);
        expect(s.modelCalls() == expReduce + expGather, "stats modelCalls %d", s.modelCalls());
        expect(s.seconds(Collective.ATTN_OUT) > 0 && s.totalSeconds() > 0, "stats recorded no time");
    }

    private void sentinels(float[] a, int off, int n, String what) {
        for (int i = 0; i < off; i++) expect(a[i] == FSENT, "%s wrote before its range at %d", what, i);
        for (int i = off + n; i < a.length; i++) expect(a[i] == FSENT, "%s wrote after its range at %d", what, i);
    }

    private void expect(boolean ok, String fmt, Object... args) {
        checks++;
        if (!ok) fail(String.format(Locale.ROOT, fmt, args));
    }

    private void fail(String msg) {
        if (failures.size() < 1000) failures.add(msg);
    }

    // ---- the JVM's own signal use -------------------------------------------------------------------------------

    /**
     * HotSpot implements these with SIGSEGV: compiled code's implicit null checks (a load from null faults and the
     * handler turns it into an NPE), stack banging/guard pages (StackOverflowError), safepoint polls. If MPI (or UCX)
     * owned SIGSEGV, the first of these would kill the process with "Caught signal 11" instead.
     */
    void jvmSignalsWork(String when) {
        int[][] arrays = new int[64][];
        for (int i = 0; i < arrays.length; i++) arrays[i] = (i % 16 == 15) ? null : new int[i + 1];
        long npes = 0, sum = 0;
        for (int round = 0; round < 20_000; round++) {
            for (int[] a : arrays) {
                try {
                    sum += lengthOf(a);
                } catch (NullPointerException e) {
                    npes++;
                }
            }
        }
        expect(npes == 20_000L * 4, "%s: caught %d NPEs, want %d", when, npes, 20_000L * 4);
        expect(sum > 0, "%s: sum", when);
        int overflows = 0;
        for (int i = 0; i < 3; i++) {
            try {
                recurse(0);
            } catch (StackOverflowError e) {
                overflows++;
            }
        }
        expect(overflows == 3, "%s: StackOverflowError not caught", when);
        System.gc();
        checks++;
    }

    private static int lengthOf(int[] a) {
        return a.length; // implicit null check in C1/C2 code
    }

    private static long recurse(long depth) {
        return depth < 0 ? depth : recurse(depth + 1) + 1;
    }
}
