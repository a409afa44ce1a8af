package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.lab.study.StudyGrid.Transport;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The study's subprocesses: {@code ./bdserve} runs under a transport's mpirun settings with a timeout, the synthetic
 * models they need, and the network namespaces of the {@code mpi-netns} transport.
 */
final class StudyProcesses {
    private final Path root, models;
    private final PrintStream log;

    /**
     * @param root   the project folder holding {@code ./bdserve}
     * @param models where synthetic models are made (once) and kept
     */
    StudyProcesses(Path root, Path models, PrintStream log) {
        this.root = root; this.models = models; this.log = log;
    }

    /** A synthetic bf16 model of the shape, made once with {@code ./bdserve synth model}. */
    Path ensureModel(String shape) throws IOException, InterruptedException {
        Path dir = models.resolve(shape);
        if (Files.exists(dir.resolve("config.json"))) return dir;
        Files.createDirectories(models);
        log.printf("making %s in %s ...%n", shape, dir);
        ProcResult r = exec(List.of(root.resolve("bdserve").toString(), "synth", "model", "--shape", shape, "--dtype", "bf16",
                "--seed", "1", "--out", dir.toString()), null, 3600);
        if (r.code != 0) throw new IOException("./bdserve synth model --shape " + shape + " failed (exit " + r.code + "): " + tail(r.stderr, 500));
        return dir;
    }

    /** A finished subprocess: exit code (-1: timed out), the JSON object on its stdout (or null), its stderr. */
    record ProcResult(int code, JsonNode json, String stderr) {}

    /** Runs {@code cmd} in the project folder, under transport {@code t}'s mpirun settings (null: none), killed after {@code timeoutS}. */
    ProcResult exec(List<String> cmd, Transport t, long timeoutS) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(root.toFile());
        if (t != null && t.mpi) pb.environment().put("BDSERVE_MPIRUN_ARGS", t.mpirunArgs);
        if (t != null && t.launcher != null) pb.environment().put("BDSERVE_MPIRUN", root.resolve(t.launcher) + " run");
        Path errFile = Files.createTempFile("bdserve-study", ".err");
        Path outFile = Files.createTempFile("bdserve-study", ".out");
        try {
            pb.redirectError(errFile.toFile()).redirectOutput(outFile.toFile());
            Process proc = pb.start();
            if (!proc.waitFor(timeoutS, TimeUnit.SECONDS)) {
                proc.descendants().forEach(ProcessHandle::destroyForcibly);
                proc.destroyForcibly();
                return new ProcResult(-1, null, "timed out after " + timeoutS + " s");
            }
            String stdout = Files.readString(outFile), stderr = Files.readString(errFile);
            JsonNode json = null;
            int brace = stdout.indexOf('{');
            if (brace >= 0) {
                try { json = StudyResults.JSON.readTree(stdout.substring(brace)); } catch (IOException e) { stderr += "\nunparsable output: " + e.getMessage(); }
            }
            return new ProcResult(proc.exitValue(), json, stderr);
        } finally {
            Files.deleteIfExists(errFile);
            Files.deleteIfExists(outFile);
        }
    }

    /**
     * Makes sure the two network namespaces of scripts/mpi-netns.sh exist (creating them needs root and iproute2);
     * IllegalStateException with the reason when this machine does not allow them, so the point is skipped.
     */
    void ensureNetns() throws IOException, InterruptedException {
        Process list = new ProcessBuilder("ip", "netns", "list").redirectErrorStream(true).start();
        String have = new String(list.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (list.waitFor() == 0 && have.contains("bdmpi-a") && have.contains("bdmpi-b")) return;
        Process up = new ProcessBuilder(root.resolve("scripts/mpi-netns.sh").toString(), "up").redirectErrorStream(true).start();
        String out = new String(up.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (up.waitFor() != 0) throw new IllegalStateException("this machine does not allow two network namespaces (scripts/mpi-netns.sh up: " + tail(out, 200) + ")");
    }

    /** The last {@code n} characters of {@code s}, stripped, with "…" when cut. */
    static String tail(String s, int n) {
        s = s.strip();
        return s.length() <= n ? s : "…" + s.substring(s.length() - n);
    }
}
