package dev.bdserve.parallel.mpi;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs {@link MpiSelfTest} under Open MPI's mpirun in separate JVMs: 2 ranks over shared memory, 2 ranks over TCP
 * loopback, 4 ranks oversubscribed. Fails (never skips) when Open MPI is not installed. The self-test also fails if
 * the JVM's SIGSEGV-based machinery (implicit null checks, stack overflow checks) or its signal handlers are broken
 * in the MPI process.
 */
class MpiCommunicatorTest {
    static final String INSTALL = "install Open MPI: apt-get install -y openmpi-bin libopenmpi-dev";
    static final long TIMEOUT_SECONDS = 300;

    @Test
    void libmpiIsFound() {
        Path p;
        try {
            p = LibMpi.find();
        } catch (UnsatisfiedLinkError e) {
            fail(e.getMessage());
            return;
        }
        assertTrue(Files.isReadable(p), p.toString());
    }

    @Test
    void twoRanksSharedMemory() throws Exception {
        runSelfTest(2, List.of("--mca", "btl", "self," + sharedMemoryBtl()), 10);
    }

    @Test
    void twoRanksTcpLoopback() throws Exception {
        runSelfTest(2, List.of("--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"), 10);
    }

    @Test
    void fourRanksOversubscribed() throws Exception {
        runSelfTest(4, List.of("--mca", "btl", "self," + sharedMemoryBtl()), 3);
    }

    // ---- launching ----------------------------------------------------------------------------------------------

    static Path mpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(File.pathSeparator)) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, "mpirun");
            if (Files.isExecutable(p)) return p;
        }
        for (String p : new String[] {"/usr/bin/mpirun", "/usr/lib64/openmpi/bin/mpirun", "/usr/local/bin/mpirun"}) {
            if (Files.isExecutable(Path.of(p))) return Path.of(p);
        }
        fail("mpirun not found on PATH: " + INSTALL);
        return null;
    }

    /** "vader" on Open MPI 4.x, "sm" from 5.0 (where vader is an alias). */
    static String sharedMemoryBtl() throws Exception {
        Process p = new ProcessBuilder(mpirun().toString(), "--version").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(30, TimeUnit.SECONDS);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("Open MPI\\)? ?(\\d+)\\.").matcher(out);
        if (!m.find()) fail("cannot read the Open MPI version from `mpirun --version`: " + out + " (" + INSTALL + ")");
        return Integer.parseInt(m.group(1)) >= 5 ? "sm" : "vader";
    }

    /**
     * The ranks' class path: surefire's test class path (test classes, main classes, dependencies), else this JVM's;
     * the folders or jars holding the test classes ({@link MpiSelfTest}, {@link MpiTpCheck}) and the main classes are
     * always on it, since the programs mpirun starts live in src/test.
     */
    static String classPath() {
        String cp = System.getProperty("surefire.test.class.path");
        if (cp == null || cp.isBlank()) cp = System.getProperty("java.class.path");
        List<String> entries = new ArrayList<>(List.of(cp.split(File.pathSeparator)));
        for (Class<?> c : new Class<?>[] {MpiSelfTest.class, MpiCommunicator.class}) {
            String where = codeSource(c);
            if (where != null && !entries.contains(where)) entries.addFirst(where);
        }
        return String.join(File.pathSeparator, entries);
    }

    private static String codeSource(Class<?> c) {
        try {
            var src = c.getProtectionDomain().getCodeSource();
            return src == null ? null : Path.of(src.getLocation().toURI()).toString();
        } catch (java.net.URISyntaxException | SecurityException e) {
            return null;
        }
    }

    /** The documented launch environment (docs/mpi.md). */
    static void launchEnvironment(Map<String, String> env) {
        env.put("OMPI_ALLOW_RUN_AS_ROOT", "1");
        env.put("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        env.put("OMPI_MCA_opal_signal", "");
        env.put("OMPI_MCA_pml", "ob1");
        env.put("UCX_ERROR_SIGNALS", "");
        env.put("OMPI_MCA_rmaps_base_oversubscribe", "1");
    }

    static void runSelfTest(int ranks, List<String> transport, int iterations) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(mpirun().toString(), "-np", String.valueOf(ranks), "--oversubscribe"));
        cmd.addAll(transport);
        cmd.addAll(List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xmx512m", "-XX:+UseSerialGC", "-cp", classPath(), MpiSelfTest.class.getName(), String.valueOf(iterations)));
        Path log = Files.createTempFile("mpi-selftest-", ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        launchEnvironment(pb.environment());
        Process p = pb.start();
        boolean done = p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (!done) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        String out = Files.readString(log);
        Files.deleteIfExists(log);
        String where = String.join(" ", cmd).replace(classPath(), "<test classpath>") + "\n--- output ---\n" + tail(out);
        assertTrue(done, "mpirun timed out after " + TIMEOUT_SECONDS + " s: " + where);
        assertEquals(0, p.exitValue(), "mpirun exit code: " + where);
        assertTrue(out.contains("MPI SELFTEST PASS ranks=" + ranks + " "), "no PASS summary line: " + where);
        assertTrue(!out.contains("replaced the JVM's signal handlers"), "MPI replaced the JVM's signal handlers: " + where);
    }

    private static String tail(String s) {
        return s.length() <= 6000 ? s : "..." + s.substring(s.length() - 6000);
    }
}
