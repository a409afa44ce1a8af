package dev.bdserve.cli;

import dev.bdserve.lab.study.HostInfo;
import dev.bdserve.lab.study.Study;
import dev.bdserve.lab.study.StudyGrid;
import dev.bdserve.lab.study.StudyReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code ./bdserve bench study}: the S-LoRA vs BD-LoRA grid, resumable, with plots and a README. */
@Command(name = "study", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Runs the S-LoRA vs BD-LoRA grid as `./bdserve bench decode` subprocesses (mpi runs under their own mpirun), "
                + "appends JSON lines to OUT/results.jsonl (skipping points already there), then draws OUT/*.png and writes OUT/README.md.")
final class StudyCommand implements Callable<Integer> {
    @Option(names = "--out", defaultValue = "docs/bench", description = "Output folder (default: ${DEFAULT-VALUE}).") Path out;
    @Option(names = "--quick", description = "The small grid (llama-160m only; ≤ 15 minutes on a loaded 2-core machine).") boolean quick;
    @Option(names = "--models-dir", description = "Where the synthetic models are made and kept (default: $BDSERVE_CACHE/study-models or ~/.cache/bdserve/study-models).") Path modelsDir;
    @Option(names = "--root", defaultValue = ".", description = "The project folder whose ./bdserve runs the points (default: the current folder; the git commit is always read from the current folder).") Path root;
    @Option(names = "--retry-failed", description = "Run again the points whose earlier attempt failed.") boolean retryFailed;
    @Option(names = "--report-only", description = "Only redraw the plots and README from results.jsonl.") boolean reportOnly;
    @Option(names = "--only", paramLabel = "REGEX", description = "Only the points whose key (e.g. llama-3.2-1b/tp2/threads/compare/b16/a8) matches REGEX (a find, not a full match).") String only;
    @Option(names = "--dry-run", description = "List the grid's points and the ones still to run, and stop.") boolean dryRun;

    @Override
    public Integer call() throws Exception {
        Path r = root.toAbsolutePath().normalize();
        if (!r.resolve("bdserve").toFile().canExecute())
            throw new IllegalArgumentException(r.resolve("bdserve") + " is missing or not executable: run from the project folder or pass --root");
        Path models = modelsDir != null ? modelsDir : Path.of(System.getenv().getOrDefault("BDSERVE_CACHE",
                System.getProperty("user.home") + "/.cache/bdserve")).resolve("study-models");
        Study study = new Study(r, out.toAbsolutePath(), models, System.err);
        List<StudyGrid.Point> grid = StudyGrid.grid(quick);
        if (only != null) {
            java.util.regex.Pattern re = java.util.regex.Pattern.compile(only);
            grid = grid.stream().filter(p -> re.matcher(p.key()).find()).toList();
            if (grid.isEmpty()) throw new IllegalArgumentException("--only " + only + " matches no point of the " + (quick ? "quick" : "full") + " grid (see --dry-run)");
        }
        if (dryRun) {
            var done = study.done(StudyGrid.settings(quick), retryFailed);
            for (StudyGrid.Point p : grid) System.out.println((done.contains(p.key()) ? "done  " : "to run ") + p.key());
            return 0;
        }
        if (!reportOnly) {
            long t0 = System.nanoTime();
            int ran = study.run(grid, StudyGrid.settings(quick), retryFailed, HostInfo.gitCommit(Path.of(".").toAbsolutePath()));
            System.err.printf("bdserve: %d of %d points ran in %.1f min%n", ran, grid.size(), (System.nanoTime() - t0) / 60e9);
        }
        StudyReport.write(study.results(), out.toAbsolutePath(), "./bdserve bench study --out " + out + (quick ? " --quick" : ""), StudyGrid.settings(quick));
        System.err.println("bdserve: wrote " + out.resolve("README.md") + " and the plots");
        return 0;
    }
}
