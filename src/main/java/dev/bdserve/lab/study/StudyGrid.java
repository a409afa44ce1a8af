package dev.bdserve.lab.study;

import java.util.ArrayList;
import java.util.List;

/** The study's points: transports, the quick and the full grid, and the workload settings of each. */
public final class StudyGrid {
    /** Transports of the grid: label, mpi or threads, BDSERVE_MPIRUN_ARGS, simulated µs per collective. */
    public enum Transport {
        THREADS("threads", false, null, null, 0),
        MPI_SHM("mpi-shm", true, "--mca btl self,vader", null, 0),
        MPI_TCP("mpi-tcp", true, "--mca btl self,tcp --mca btl_tcp_if_include lo", null, 0),
        /** Two "hosts": one rank in each of two network namespaces joined by a veth pair (scripts/mpi-netns.sh; root). */
        MPI_NETNS("mpi-netns", true, " ", "scripts/mpi-netns.sh", 0),
        SIM10("sim-10us", false, null, null, 10),
        SIM50("sim-50us", false, null, null, 50),
        SIM100("sim-100us", false, null, null, 100);

        public final String label;
        final boolean mpi;
        final String mpirunArgs;   // BDSERVE_MPIRUN_ARGS for ./bdserve (" ": none beyond the launcher's)
        final String launcher;     // a script whose `run` replaces mpirun (BDSERVE_MPIRUN), or null
        public final int simUs;

        Transport(String label, boolean mpi, String mpirunArgs, String launcher, int simUs) {
            this.label = label; this.mpi = mpi; this.mpirunArgs = mpirunArgs; this.launcher = launcher; this.simUs = simUs;
        }
    }

    /**
     * One run: {@code compare} is base/replicated/slora/bdlora (parameter-matched) from --compare-sharding;
     * {@code bd2x} is bdlora alone at twice the parameter-matched BD rank.
     */
    public record Point(String shape, int tp, Transport transport, String kind, int batch, int adapters) {
        public String key() {
            return shape + "/tp" + tp + "/" + transport.label + "/" + kind + "/b" + batch + "/a" + adapters;
        }
    }

    /** Workload settings shared by every run. */
    public record Settings(int rank, int promptTokens, int genTokens, int warmup, int repeats, long timeoutSeconds) {
        public Settings {
            if (rank < 1 || promptTokens < 1 || genTokens < 1 || warmup < 0 || repeats < 1 || timeoutSeconds < 1)
                throw new IllegalArgumentException("bad study settings: " + rank + ", " + promptTokens + ", " + genTokens + ", " + warmup + ", " + repeats + ", " + timeoutSeconds);
        }
    }

    private StudyGrid() {}

    /** 32 timed decode steps per strategy, the strategies interleaved step by step, 3 times (merged); the full grid with 64-token prompts. */
    public static Settings settings(boolean quick) {
        return quick ? new Settings(16, 16, 32, 4, 3, 600) : new Settings(16, 64, 32, 8, 3, 3600);
    }

    /** The grid; the quick one is a subset sized to finish in ≈ 20 minutes on this 2-core machine. */
    public static List<Point> grid(boolean quick) {
        List<Point> g = new ArrayList<>();
        if (quick) {
            // the regime map: per-collective latency (threads, simulated 10/50/100 µs, mpi over TCP) × batch 1/4/16
            String s = "llama-160m";
            for (Transport t : new Transport[] {Transport.THREADS, Transport.SIM10, Transport.SIM50, Transport.SIM100, Transport.MPI_TCP})
                for (int b : new int[] {1, 4, 16}) g.add(new Point(s, 2, t, "compare", b, 1));
            g.add(new Point(s, 2, Transport.THREADS, "compare", 16, 8));
            g.add(new Point(s, 2, Transport.THREADS, "bd2x", 4, 1));
            g.add(new Point(s, 2, Transport.MPI_SHM, "compare", 4, 1));
            for (int b : new int[] {1, 4, 16}) g.add(new Point(s, 2, Transport.MPI_NETNS, "compare", b, 1));
            g.add(new Point(s, 1, Transport.THREADS, "compare", 4, 1));
            return g;
        }
        for (String s : new String[] {"llama-160m", "llama-3.2-1b"})
            for (int tp : new int[] {1, 2})
                for (Transport t : Transport.values()) {
                    if (tp == 1 && t != Transport.THREADS) continue;
                    for (int b : new int[] {1, 4, 16, 64})
                        for (int a : new int[] {1, 8, 64}) {
                            if (a > b) continue;                 // round-robin: only min(a, batch) adapters are in flight
                            g.add(new Point(s, tp, t, "compare", b, a));
                            if (tp > 1) g.add(new Point(s, tp, t, "bd2x", b, a));
                        }
                }
        return g;
    }
}
