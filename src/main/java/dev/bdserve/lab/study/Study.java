package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The S-LoRA vs BD-LoRA study: a grid of {@code ./bdserve bench decode} runs, each a subprocess (so the mpi
 * transports get their own mpirun), appended as JSON lines (one per run and strategy) to
 * {@code results.jsonl}; points already there are skipped, so an interrupted grid resumes.
 */
public final class Study {
    private static final ObjectMapper JSON = new ObjectMapper();

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

    private final Path root, out, models;
    private final PrintStream log;

    /**
     * @param root   the project folder holding {@code ./bdserve}
     * @param out    the output folder (results.jsonl, plots, README.md)
     * @param models where synthetic models are made (once) and kept
     */
    public Study(Path root, Path out, Path models, PrintStream log) {
        this.root = root; this.out = out; this.models = models; this.log = log;
    }

    public Path results() { return out.resolve("results.jsonl"); }

    /**
     * Keys of the points already in results.jsonl with these settings (the quick and the full grid share point
     * names but not prompt and decode lengths); errors included unless {@code retryFailed}.
     */
    public Set<String> done(Settings s, boolean retryFailed) throws IOException {
        Set<String> keys = new HashSet<>();
        for (JsonNode j : readResults(results()))
            if (matches(j, s) && (!retryFailed || !j.has("error"))) keys.add(j.path("point").asText());
        return keys;
    }

    /** Whether a result row was measured with these settings. */
    public static boolean matches(JsonNode j, Settings s) {
        return j.path("prompt_tokens").asInt() == s.promptTokens() && j.path("gen_tokens").asInt() == s.genTokens();
    }

    public static List<JsonNode> readResults(Path f) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        if (!Files.exists(f)) return out;
        int n = 0;
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
            n++;
            if (line.isBlank()) continue;
            try {
                out.add(JSON.readTree(line));
            } catch (IOException e) {
                throw new IOException(f + " line " + n + " is not JSON: " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** Runs every point of the grid not yet in results.jsonl; returns how many ran. */
    public int run(List<Point> grid, Settings s, boolean retryFailed, String commit) throws IOException, InterruptedException {
        Files.createDirectories(out);
        Set<String> done = done(s, retryFailed);
        int ran = 0, i = 0;
        Map<String, JsonNode> compareRuns = new LinkedHashMap<>();
        for (JsonNode j : readResults(results()))
            if (matches(j, s) && j.path("kind").asText().equals("compare") && j.has("raw_adapters")) compareRuns.put(j.path("point").asText(), j.path("raw_adapters"));
        for (Point p : grid) {
            i++;
            if (done.contains(p.key())) { log.printf("[%d/%d] %s: already in %s%n", i, grid.size(), p.key(), results().getFileName()); continue; }
            Path model = ensureModel(p.shape());
            List<String> cmd;
            try {
                if (p.transport() == Transport.MPI_NETNS) ensureNetns();
                cmd = command(p, s, model, compareRuns);
            } catch (IllegalStateException e) {
                log.printf("[%d/%d] %s: skipped: %s%n", i, grid.size(), p.key(), e.getMessage());
                continue;
            }
            log.printf("[%d/%d] %s: %s%n", i, grid.size(), p.key(), String.join(" ", cmd));
            long t0 = System.nanoTime();
            ProcResult r = exec(cmd, p.transport(), s.timeoutSeconds());
            double wall = (System.nanoTime() - t0) / 1e9;
            List<ObjectNode> rows = new ArrayList<>();
            if (r.code != 0 || r.json == null) {
                ObjectNode e = base(p, s, commit, wall);
                String first = r.stderr.lines().filter(l -> l.contains("Exception") || l.startsWith("bdserve:")).findFirst().orElse("");
                e.put("error", "exit " + r.code + ": " + (first.isEmpty() ? "" : first.strip() + " … ") + tail(r.stderr, 400));
                rows.add(e);
                log.printf("    failed (exit %d): %s%n", r.code, tail(r.stderr, 300));
            } else {
                rows.addAll(rows(p, s, commit, wall, r.json));
                if (p.kind().equals("compare")) compareRuns.put(p.key(), r.json.path("adapters"));
                log.printf("    %.0f s%n", wall);
            }
            try (var w = Files.newBufferedWriter(results(), StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
                for (ObjectNode o : rows) { w.write(JSON.writeValueAsString(o)); w.write('\n'); }
            }
            ran++;
        }
        return ran;
    }

    private List<String> command(Point p, Settings s, Path model, Map<String, JsonNode> compareRuns) {
        List<String> c = new ArrayList<>(List.of(root.resolve("bdserve").toString(), "bench", "decode", "--model", model.toString(),
                "--tp", Integer.toString(p.tp()), "--batch", Integer.toString(p.batch()),
                "--prompt-tokens", Integer.toString(s.promptTokens()), "--gen-tokens", Integer.toString(s.genTokens()),
                "--warmup", Integer.toString(s.warmup()), "--adapters", Integer.toString(p.adapters()), "--no-probes"));
        c.addAll(List.of("--tp-transport", p.transport().mpi ? "mpi" : "threads"));
        if (p.transport().simUs > 0) c.addAll(List.of("--tp-sim-latency-us", Integer.toString(p.transport().simUs)));
        int nb = Math.max(2, p.tp());
        if (p.kind().equals("compare")) {
            // the strategies interleaved step by step in one process, several times (merged): host drift hits them alike
            c.addAll(List.of("--compare-sharding", "--repeats", Integer.toString(s.repeats()), "--rank", Integer.toString(s.rank()), "--bd-nblocks", Integer.toString(nb)));
        } else {
            String twin = new Point(p.shape(), p.tp(), p.transport(), "compare", p.batch(), p.adapters()).key();
            JsonNode cmp = compareRuns.get(twin);
            int bd2 = cmp != null ? 2 * cmp.path("bd_rank_parameter_matched").asInt() : 0;
            if (bd2 == 0) throw new IllegalStateException(p.key() + " needs the parameter-matched BD rank from " + twin + ", which has no result yet");
            c.addAll(List.of("--rank", Integer.toString(bd2), "--bd-nblocks", Integer.toString(nb), "--lora-sharding", "bdlora"));
        }
        return c;
    }

    private ObjectNode base(Point p, Settings s, String commit, double wall) {
        ObjectNode o = JSON.createObjectNode();
        o.put("point", p.key());
        o.put("time", Instant.now().toString());
        o.put("git_commit", commit);
        o.put("shape", p.shape());
        o.put("tp", p.tp());
        o.put("transport", p.transport().label);
        o.put("simulated", p.transport().simUs > 0);
        o.put("sim_latency_us", p.transport().simUs);
        o.put("kind", p.kind());
        o.put("batch", p.batch());
        o.put("adapters", p.adapters());
        o.put("prompt_tokens", s.promptTokens());
        o.put("gen_tokens", s.genTokens());
        o.put("run_wall_s", Math.round(wall * 10) / 10.0);
        o.put("load_avg_1m", loadAverage());
        return o;
    }

    /** One row per strategy of a decode run's JSON. */
    List<ObjectNode> rows(Point p, Settings s, String commit, double wall, JsonNode j) {
        List<ObjectNode> out = new ArrayList<>();
        JsonNode ad = j.path("adapters");
        Map<String, JsonNode> runs = new LinkedHashMap<>();
        if (j.has("runs")) for (Iterator<Map.Entry<String, JsonNode>> it = j.get("runs").fields(); it.hasNext(); ) {
            var e = it.next();
            runs.put(e.getKey(), e.getValue());
        }
        else runs.put("base", j);
        for (var e : runs.entrySet()) {
            String strategy = e.getKey();
            if (p.kind().equals("bd2x")) {
                if (strategy.equals("base")) continue;
                strategy = "bdlora_2x";
            }
            JsonNode r = e.getValue();
            ObjectNode o = base(p, s, commit, wall);
            o.put("strategy", strategy);
            int rank = switch (strategy) {
                case "base" -> 0;
                case "replicated", "slora" -> ad.path("dense_rank").asInt();
                case "bdlora" -> ad.path("bd_rank_parameter_matched").asInt();
                default -> ad.path("rank").asInt();
            };
            o.put("lora_rank", rank);
            o.put("bd_nblocks", ad.path("bd_nblocks").asInt());
            long params = switch (strategy) {
                case "base" -> 0;
                case "replicated", "slora" -> ad.path("dense_params_each").asLong();
                case "bdlora" -> ad.path("bd_params_each").asLong();
                default -> ad.path("params_each").asLong();
            };
            o.put("adapter_params_each", params);
            for (String k : new String[] {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_ms_per_step", "collective_ms_per_decode_step",
                    "lora_ms_per_step", "lora_flops_per_step_rank0", "lora_bytes_per_step_rank0"})
                if (r.has(k)) o.set(k, r.get(k));
            o.put("params", j.path("params").asLong());
            o.put("weight_bytes_per_step_rank0", j.path("weight_bytes_per_step_rank0").asLong());
            // collectives per decode step by kind, and their bytes per step (per token from prefill, where every token crosses every layer once)
            ObjectNode counts = o.putObject("collectives_per_decode_step"), bytes = o.putObject("collective_bytes_per_decode_step");
            double total = 0, totalBytes = 0;
            long prefillTokens = (long) p.batch() * s.promptTokens();
            for (Iterator<Map.Entry<String, JsonNode>> it = r.path("collectives_per_decode_step").fields(); it.hasNext(); ) {
                var c = it.next();
                double n = c.getValue().asDouble();
                counts.put(c.getKey(), n);
                total += n;
                JsonNode pre = r.path("collectives_prefill").path(c.getKey());
                double b = c.getKey().equals("logits") ? pre.path("bytes").asDouble() // the last row of each sequence, as in a decode step
                        : pre.path("bytes").asDouble() / prefillTokens * p.batch();
                bytes.put(c.getKey(), Math.round(b));
                totalBytes += b;
            }
            o.put("collectives_per_step_total", total);
            o.put("collective_bytes_per_step_total", Math.round(totalBytes));
            double step = r.path("decode_ms_per_step").asDouble();
            o.put("collective_share", step > 0 ? r.path("collective_ms_per_decode_step").asDouble() / step : 0);
            if (j.has("slora_over_bdlora_step_time")) o.set("slora_over_bdlora_step_time", j.get("slora_over_bdlora_step_time"));
            if (strategy.equals("slora") && j.has("mechanism")) o.set("mechanism", j.get("mechanism"));   // latency floor, prediction
            o.put("jvm", j.path("jvm").asText());
            o.put("cores", j.path("cores").asInt());
            o.put("vector_bits", j.path("vector_bits").asInt());
            o.put("os_arch", j.path("os_arch").asText());
            o.put("machine", machine());
            if (strategy.equals("base") || p.kind().equals("bd2x")) o.set("raw_adapters", ad);
            out.add(o);
        }
        return out;
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

    record ProcResult(int code, JsonNode json, String stderr) {}

    private ProcResult exec(List<String> cmd, Transport t, long timeoutS) throws IOException, InterruptedException {
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
                try { json = JSON.readTree(stdout.substring(brace)); } catch (IOException e) { stderr += "\nunparsable output: " + e.getMessage(); }
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
    private void ensureNetns() throws IOException, InterruptedException {
        Process list = new ProcessBuilder("ip", "netns", "list").redirectErrorStream(true).start();
        String have = new String(list.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (list.waitFor() == 0 && have.contains("bdmpi-a") && have.contains("bdmpi-b")) return;
        Process up = new ProcessBuilder(root.resolve("scripts/mpi-netns.sh").toString(), "up").redirectErrorStream(true).start();
        String out = new String(up.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (up.waitFor() != 0) throw new IllegalStateException("this machine does not allow two network namespaces (scripts/mpi-netns.sh up: " + tail(out, 200) + ")");
    }

    static String tail(String s, int n) {
        s = s.strip();
        return s.length() <= n ? s : "…" + s.substring(s.length() - n);
    }

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
