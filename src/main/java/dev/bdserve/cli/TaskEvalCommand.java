package dev.bdserve.cli;

import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.hub.ModelResolver;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import dev.bdserve.lab.train.SynthData;
import dev.bdserve.lab.train.SynthTask;
import dev.bdserve.lab.train.TrainData;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** Measures a synthetic task's accuracy of an adapter (greedy, held-out prompts) against the base model. */
@Command(name = "task-eval", mixinStandardHelpOptions = true,
        description = "Greedy accuracy of an adapter on the held-out prompts of a synthetic task file, against the base model.")
public final class TaskEvalCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = ModelResolver.DEFAULT_MODEL) String model;
    @Option(names = "--task", required = true, description = "caps, swap or closing.") String task;
    @Option(names = "--data", required = true, description = "The task's .jsonl (its held-out split is used).") Path data;
    @Option(names = "--eval-fraction", defaultValue = "0.05") double evalFraction;
    @Option(names = "--adapter", required = true) Path adapter;
    @Option(names = "--prompts", defaultValue = "64") int prompts;
    @Option(names = "--tp", defaultValue = "1") int tp;

    public static void main(String[] args) { System.exit(new picocli.CommandLine(new TaskEvalCommand()).execute(args)); }

    @Override public Integer call() throws IOException {
        Path p = ModelResolver.fromEnvironment(TerminalDownloadProgress.ifTerminal()).resolve(model);
        System.err.print(measure(p, Tokenizers.load(p), SynthTask.parse(task), data, evalFraction, adapter, prompts, tp, adapter));
        return 0;
    }

    /** The report; also writes task_metrics.json into {@code metricsDir}. */
    static String measure(Path modelPath, Tokenizer tok, SynthTask t, Path data, double evalFraction, Path adapterDir, int nPrompts, int tp,
                          Path metricsDir) throws IOException {
        if (!TrainData.isJsonl(data)) throw new IllegalArgumentException("the task accuracy needs the task's .jsonl data");
        List<String> prompts = SynthData.heldOut(data, evalFraction).stream().limit(nPrompts).map(TrainData.PromptCompletion::prompt).toList();
        var opts = new TpGroup.Options(tp, 1, LoraSharding.AUTO, LoraSharding.REPLICATED, 0);
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(modelPath), opts)) {
            int id = g.addAdapter(PeftAdapterLoader.load("trained", adapterDir, g.config(), 1024));
            var base = t.score(SynthData.complete(g, tok, prompts, -1, 128));
            List<String> adapted = SynthData.complete(g, tok, prompts, id, 128);
            var score = t.score(adapted);
            Files.writeString(metricsDir.resolve("task_metrics.json"), String.format(Locale.ROOT,
                    "{\"task\": \"%s\", \"prompts\": %d, \"tp\": %d, \"base_accuracy\": %.6f, \"accuracy\": %.6f}%n",
                    t.cliName(), prompts.size(), tp, base.accuracy(), score.accuracy()));
            return String.format(Locale.ROOT, "task %s on %d held-out prompts (greedy, TP %d, sharding %s): base %.1f%% → adapter %.1f%%%n  base: %s%n  adapter: %s%n  e.g. \"%s\" →%s%n",
                    t.cliName(), prompts.size(), tp, g.adapterSharding(id).name().toLowerCase(Locale.ROOT), 100 * base.accuracy(), 100 * score.accuracy(),
                    base.detail(), score.detail(), prompts.get(0), adapted.get(0));
        }
    }
}
