package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.lab.study.StudyGrid.Point;
import dev.bdserve.lab.study.StudyGrid.Settings;
import dev.bdserve.lab.study.StudyGrid.Transport;
import dev.bdserve.lab.study.StudyProcesses.ProcResult;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The S-LoRA vs BD-LoRA study: a grid of {@code ./bdserve bench decode} runs, each a subprocess (so the mpi
 * transports get their own mpirun), appended as JSON lines (one per run and strategy) to
 * {@code results.jsonl}; points already there are skipped, so an interrupted grid resumes.
 */
public final class Study {
    private final Path root, out;
    private final PrintStream log;
    private final StudyProcesses procs;

    /**
     * @param root   the project folder holding {@code ./bdserve}
     * @param out    the output folder (results.jsonl, plots, README.md)
     * @param models where synthetic models are made (once) and kept
     */
    public Study(Path root, Path out, Path models, PrintStream log) {
        this.root = root; this.out = out; this.log = log;
        this.procs = new StudyProcesses(root, models, log);
    }

    public Path results() { return out.resolve("results.jsonl"); }

    /**
     * Keys of the points already in results.jsonl with these settings (the quick and the full grid share point
     * names but not prompt and decode lengths); errors included unless {@code retryFailed}.
     */
    public Set<String> done(Settings s, boolean retryFailed) throws IOException {
        Set<String> keys = new HashSet<>();
        for (JsonNode j : StudyResults.readResults(results()))
            if (StudyResults.matches(j, s) && (!retryFailed || !j.has("error"))) keys.add(j.path("point").asText());
        return keys;
    }

    /** Runs every point of the grid not yet in results.jsonl; returns how many ran. */
    public int run(List<Point> grid, Settings s, boolean retryFailed, String commit) throws IOException, InterruptedException {
        Files.createDirectories(out);
        Set<String> done = done(s, retryFailed);
        int ran = 0, i = 0;
        Map<String, JsonNode> compareRuns = new LinkedHashMap<>();
        for (JsonNode j : StudyResults.readResults(results()))
            if (StudyResults.matches(j, s) && j.path("kind").asText().equals("compare") && j.has("raw_adapters")) compareRuns.put(j.path("point").asText(), j.path("raw_adapters"));
        for (Point p : grid) {
            i++;
            if (done.contains(p.key())) { log.printf("[%d/%d] %s: already in %s%n", i, grid.size(), p.key(), results().getFileName()); continue; }
            Path model = procs.ensureModel(p.shape());
            List<String> cmd;
            try {
                if (p.transport() == Transport.MPI_NETNS) procs.ensureNetns();
                cmd = command(p, s, model, compareRuns);
            } catch (IllegalStateException e) {
                log.printf("[%d/%d] %s: skipped: %s%n", i, grid.size(), p.key(), e.getMessage());
                continue;
            }
            log.printf("[%d/%d] %s: %s%n", i, grid.size(), p.key(), String.join(" ", cmd));
            long t0 = System.nanoTime();
            ProcResult r = procs.exec(cmd, p.transport(), s.timeoutSeconds());
            double wall = (System.nanoTime() - t0) / 1e9;
            List<ObjectNode> rows = new ArrayList<>();
            if (r.code() != 0 || r.json() == null) {
                ObjectNode e = StudyResults.base(p, s, commit, wall);
                String first = r.stderr().lines().filter(l -> l.contains("Exception") || l.startsWith("bdserve:")).findFirst().orElse("");
                e.put("error", "exit " + r.code() + ": " + (first.isEmpty() ? "" : first.strip() + " … ") + StudyProcesses.tail(r.stderr(), 400));
                rows.add(e);
                log.printf("    failed (exit %d): %s%n", r.code(), StudyProcesses.tail(r.stderr(), 300));
            } else {
                rows.addAll(StudyResults.rows(p, s, commit, wall, r.json()));
                if (p.kind().equals("compare")) compareRuns.put(p.key(), r.json().path("adapters"));
                log.printf("    %.0f s%n", wall);
            }
            try (var w = Files.newBufferedWriter(results(), StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
                for (ObjectNode o : rows) { w.write(StudyResults.JSON.writeValueAsString(o)); w.write('\n'); }
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
}
