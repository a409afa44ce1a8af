package dev.bdserve.parallel.mpi;

import dev.bdserve.parallel.Collective;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Locale;


/**
 * All-reduce latency over the transport the mpirun line chose (see docs/mpi.md), per call, for 256, 2048 and 65 536
 * floats (or the sizes given as arguments), three ways:
 * <ul>
 *   <li>{@code critical-heap}: {@link MpiCommunicator.Buffers#CRITICAL_HEAP}, the Java array passed in place;</li>
 *   <li>{@code offheap-copy}: {@link MpiCommunicator.Buffers#OFF_HEAP_COPY}, copied to an off-heap segment and back;</li>
 *   <li>{@code raw-offheap}: MPI_Allreduce on an off-heap segment with no copy (the floor a C program would see).</li>
 * </ul>
 * Rank 0 prints median and p99 microseconds per call, the maximum over ranks of each rank's percentile.
 * <pre>mpirun -np 2 ... java ... dev.bdserve.parallel.mpi.MpiLatencyProbe [iterations] [size ...]</pre>
 */
public final class MpiLatencyProbe {
    public static void main(String[] args) {
        int iterations = args.length > 0 ? Integer.parseInt(args[0]) : 5000;
        int[] sizes = args.length > 1 ? Arrays.stream(args, 1, args.length).mapToInt(Integer::parseInt).toArray()
                : new int[] {256, 2048, 65_536};
        try (MpiCommunicator comm = MpiCommunicator.init(); Arena arena = Arena.ofConfined()) {
            if (comm.rank() == 0) {
                System.out.printf(Locale.ROOT, "# %d ranks, %s, btl=%s%n", comm.size(),
                        comm.libraryVersion().lines().findFirst().orElse(""), System.getenv().getOrDefault("OMPI_MCA_btl", "(see mpirun --mca btl)"));
                System.out.printf(Locale.ROOT, "%-14s %8s %8s %10s %10s%n", "mode", "floats", "iters", "median_us", "p99_us");
            }
            for (int n : sizes) {
                int iters = n >= 65_536 ? Math.max(200, iterations / 10) : iterations;
                float[] buf = new float[n];
                MemorySegment off = arena.allocate((long) n * Float.BYTES, 64);
                String[] modes = {"critical-heap", "offheap-copy", "raw-offheap"};
                long[][] ns = new long[modes.length][iters];
                int warm = Math.min(iters, 2000);
                // modes interleaved call by call, so that load from other processes hits them alike
                for (int k = -warm; k < iters; k++) {
                    for (int m = 0; m < modes.length; m++) {
                        Arrays.fill(buf, 1f);
                        if (m == 0) comm.setBuffers(MpiCommunicator.Buffers.CRITICAL_HEAP);
                        if (m == 1) comm.setBuffers(MpiCommunicator.Buffers.OFF_HEAP_COPY);
                        long t0 = System.nanoTime();
                        if (m < 2) comm.allReduceSum(buf, 0, n, Collective.ATTN_OUT);
                        else comm.rawAllReduceSum(off, n);
                        long dt = System.nanoTime() - t0;
                        if (k >= 0) ns[m][k] = dt;
                        if (m < 2 && buf[n - 1] != comm.size()) throw new IllegalStateException("wrong sum " + buf[n - 1] + " in " + modes[m]);
                    }
                }
                for (int m = 0; m < modes.length; m++) {
                    long[] x = ns[m];
                    Arrays.sort(x);
                    float[] worst = {x[iters / 2] / 1e3f, x[Math.min(iters - 1, (int) Math.ceil(iters * 0.99) - 1)] / 1e3f};
                    comm.setBuffers(MpiCommunicator.Buffers.OFF_HEAP_COPY);
                    maxOverRanks(comm, worst);
                    if (comm.rank() == 0) {
                        System.out.printf(Locale.ROOT, "%-14s %8d %8d %10.2f %10.2f%n", modes[m], n, iters, worst[0], worst[1]);
                    }
                }
                comm.barrier();
            }
            comm.setBuffers(MpiCommunicator.Buffers.AUTO);
        }
    }

    /** Max over ranks through an allgather (MPI has MPI_MAX, but the Communicator API only sums). */
    private static void maxOverRanks(MpiCommunicator comm, float[] v) {
        float[] all = new float[v.length * comm.size()];
        comm.allGather(v, 0, v.length, all, 0, Collective.CONTROL);
        for (int r = 0; r < comm.size(); r++) for (int i = 0; i < v.length; i++) v[i] = Math.max(v[i], all[r * v.length + i]);
    }
}
