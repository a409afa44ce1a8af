package dev.bdserve.lab.study;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** What each result row records about where it ran: load, CPU and memory, the git commit. */
public final class HostInfo {
    private HostInfo() {}

    /** The 1-minute load average from /proc/loadavg, or -1 where there is none. */
    static double loadAverage() {
        try {
            return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** CPU model and memory, from /proc (Linux). */
    public static String machine() {
        String cpu = "unknown CPU";
        long memKb = 0;
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) if (l.startsWith("model name")) { cpu = l.substring(l.indexOf(':') + 1).strip(); break; }
            for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) if (l.startsWith("MemTotal")) { memKb = Long.parseLong(l.replaceAll("\\D", "")); break; }
        } catch (IOException | RuntimeException ignored) {
            // not Linux: keep what we have
        }
        return cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores, " + Math.round(memKb / 1048576.0) + " GB";
    }

    /** The current git commit of the project (with "-dirty" when the work tree has changes), or "unknown". */
    public static String gitCommit(Path root) {
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "--short=12", "HEAD").directory(root.toFile()).redirectErrorStream(true).start();
            String c = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (p.waitFor() != 0) return "unknown";
            Process d = new ProcessBuilder("git", "status", "--porcelain", "--untracked-files=no").directory(root.toFile()).redirectErrorStream(true).start();
            String dirty = new String(d.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            d.waitFor();
            return dirty.isEmpty() ? c : c + "-dirty";
        } catch (IOException e) {
            return "unknown";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }
}
