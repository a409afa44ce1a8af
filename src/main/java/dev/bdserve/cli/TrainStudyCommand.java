package dev.bdserve.cli;

import dev.bdserve.model.hub.ModelResolver;
import dev.bdserve.tokenizer.Tokenizers;
import dev.bdserve.lab.train.SynthTask;
import dev.bdserve.lab.train.TrainStudy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code train-study}: LoRA ranks vs parameter-matched BD-LoRA on an LM task and an accuracy task; writes CSV, a table and a PNG. */
@Command(name = "train-study", mixinStandardHelpOptions = true,
        description = "Train LoRA at several ranks and BD-LoRA at parameter-matched ranks over seeds; write results.csv, table.md and plot.png.")
public final class TrainStudyCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = ModelResolver.DEFAULT_MODEL) String model;
    @Option(names = "--lm-data", defaultValue = "data/swap-text.txt", description = "Plain-text LM task (default: ${DEFAULT-VALUE}).") Path lmData;
    @Option(names = "--task-data", defaultValue = "data/caps.jsonl", description = "Accuracy task data (default: ${DEFAULT-VALUE}).") Path taskData;
    @Option(names = "--task", defaultValue = "caps", description = "The accuracy task's metric (default: ${DEFAULT-VALUE}).") String task;
    @Option(names = "--ranks", defaultValue = "4,8,16,32", split = ",", description = "LoRA ranks (default: ${DEFAULT-VALUE}).") List<Integer> ranks;
    @Option(names = "--nblocks", defaultValue = "2,4", split = ",", description = "BD block counts (default: ${DEFAULT-VALUE}).") List<Integer> nblocks;
    @Option(names = "--seeds", defaultValue = "3") int seeds;
    @Option(names = "--first-seed", defaultValue = "0", description = "Seeds run are first-seed .. first-seed + seeds − 1.") long firstSeed;
    @Option(names = "--steps", defaultValue = "80") int steps;
    @Option(names = "--batch", defaultValue = "8") int batch;
    @Option(names = "--seq-len", defaultValue = "128") int seqLen;
    @Option(names = "--lr", defaultValue = "5e-3") double lr;
    @Option(names = "--prompts", defaultValue = "32", description = "Held-out prompts for the accuracy (default: ${DEFAULT-VALUE}).") int prompts;
    @Option(names = "--threads", defaultValue = "2") int threads;
    @Option(names = "--out", defaultValue = "docs/train-study") Path out;
    @Option(names = "--replot", description = "Only redraw table.md and plot.png from OUT/results.csv.") boolean replot;

    public static void main(String[] args) { System.exit(new picocli.CommandLine(new TrainStudyCommand()).execute(args)); }

    @Override public Integer call() {
        var s = new TrainStudy.Settings(ranks, nblocks, firstSeed, seeds, steps, batch, seqLen, lr, prompts, threads);
        if (replot) {
            TrainStudy.write(TrainStudy.readCsv(out.resolve("results.csv")), out, SynthTask.parse(task), s);
            return 0;
        }
        Path p = ModelResolver.fromEnvironment(TerminalDownloadProgress.ifTerminal()).resolve(model);
        TrainStudy.run(p, Tokenizers.load(p), lmData, taskData, SynthTask.parse(task), s, out, System.err::println);
        System.err.println("wrote " + out.resolve("results.csv") + ", table.md, plot.png");
        return 0;
    }
}
