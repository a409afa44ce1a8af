package dev.bdserve.cli;

import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.hub.ModelResolver;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import dev.bdserve.lab.train.Checkpoint;
import dev.bdserve.lab.train.FrozenLlama;
import dev.bdserve.lab.train.LlamaBackprop;
import dev.bdserve.lab.train.LoraSpec;
import dev.bdserve.lab.train.LoraTrainer;
import dev.bdserve.lab.train.TrainData;
import dev.bdserve.lab.train.TrainOptions;
import dev.bdserve.lab.train.TrainableAdapter;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code ./bdserve train}: trains a LoRA or BD-LoRA adapter on the frozen base model and writes a PEFT folder. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train a LoRA or BD-LoRA adapter (backpropagation through the frozen base model in fp32, AdamW,",
                "warm-up + cosine schedule, gradient clipping) and write it as a PEFT folder.",
                "Data: plain text (language modelling) or .jsonl with {\"prompt\", \"completion\"} (loss on the completion)."})
public final class TrainCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = ModelResolver.DEFAULT_MODEL, description = "Base model (default: ${DEFAULT-VALUE}).")
    String model;
    @Option(names = "--data", required = true, description = "Training data: a text file, or .jsonl with prompt/completion.")
    Path data;
    @Option(names = "--method", defaultValue = "lora", description = "lora or bdlora (default: ${DEFAULT-VALUE}).")
    String method;
    @Option(names = "--rank", required = true, description = "LoRA rank r (a multiple of --nblocks for bdlora).")
    int rank;
    @Option(names = "--nblocks", defaultValue = "0", description = "Blocks of the block-diagonal factors (bdlora; default: 2).")
    int nblocks;
    @Option(names = "--alpha", description = "lora_alpha (default: 2·rank, or 2·sqrt(rank)·sqrt(rank) = same scaling with --rslora).")
    Double alpha;
    @Option(names = "--rslora", description = "rsLoRA scaling alpha/sqrt(r) instead of alpha/r.")
    boolean rslora;
    @Option(names = "--targets", defaultValue = "q,k,v,o,gate,up,down", description = "Adapted projections (default: ${DEFAULT-VALUE}).")
    String targets;

    static final class Length {
        @Option(names = "--steps", description = "Optimizer steps.") Integer steps;
        @Option(names = "--epochs", description = "Epochs over the training split (may be fractional).") Double epochs;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1") Length length;

    @Option(names = "--lr", defaultValue = "2e-3", description = "Peak learning rate (default: ${DEFAULT-VALUE}).") double lr;
    @Option(names = "--batch", defaultValue = "8", description = "Sequences per step (default: ${DEFAULT-VALUE}).") int batch;
    @Option(names = "--seq-len", defaultValue = "256", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).") int seqLen;
    @Option(names = "--warmup", defaultValue = "20", description = "Warm-up steps (default: ${DEFAULT-VALUE}).") int warmup;
    @Option(names = "--min-lr-ratio", defaultValue = "0.1", description = "Cosine floor as a fraction of --lr (default: ${DEFAULT-VALUE}).") double minLrRatio;
    @Option(names = "--weight-decay", defaultValue = "0.0", description = "AdamW decoupled weight decay (default: ${DEFAULT-VALUE}).") double weightDecay;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", description = "Clip the global gradient norm (0: off; default: ${DEFAULT-VALUE}).") double maxGradNorm;
    @Option(names = "--seed", defaultValue = "0", description = "Seed of the init and data order (default: ${DEFAULT-VALUE}).") long seed;
    @Option(names = "--eval-fraction", defaultValue = "0.05", description = "Held-out fraction of the data (default: ${DEFAULT-VALUE}).") double evalFraction;
    @Option(names = "--eval-every", defaultValue = "0", description = "Evaluate every N steps (0: at start and end).") int evalEvery;
    @Option(names = "--save-every", defaultValue = "50", description = "Checkpoint every N steps (default: ${DEFAULT-VALUE}).") int saveEvery;
    @Option(names = "--threads", description = "Worker threads (default: all cores).") Integer threads;
    @Option(names = "--resume", description = "Continue from the checkpoint in OUT/checkpoint.") boolean resume;
    @Option(names = "--no-checkpoint", description = "Do not keep OUT/checkpoint (optimizer state) after training.") boolean noCheckpoint;
    @Option(names = "--quiet", description = "No progress bar.") boolean quiet;
    @Option(names = "--out", required = true, description = "Output PEFT folder.") Path out;
    @Option(names = "--task", description = "After training, measure this synthetic task's accuracy (caps, swap, closing) by greedy generation on held-out prompts, base vs adapter.")
    String task;
    @Option(names = "--task-prompts", defaultValue = "64", description = "Held-out prompts for --task (default: ${DEFAULT-VALUE}).") int taskPrompts;
    @Option(names = "--task-tp", defaultValue = "1", description = "Serve the adapter at this TP degree for --task (bdlora sharding; default: ${DEFAULT-VALUE}).") int taskTp;

    @Override
    public Integer call() throws IOException {
        Path modelPath = ModelResolver.fromEnvironment(TerminalDownloadProgress.ifTerminal()).resolve(model);
        LoraSpec.Method m = LoraSpec.Method.parse(method);
        int nb = m == LoraSpec.Method.LORA ? 1 : (nblocks == 0 ? 2 : nblocks);
        if (m == LoraSpec.Method.LORA && nblocks > 1) throw new IllegalArgumentException("--nblocks needs --method bdlora");
        double a = alpha != null ? alpha : (rslora ? 2 * Math.sqrt(rank) : 2.0 * rank);
        LoraSpec spec = new LoraSpec(m, rank, nb, a, rslora, LoraSpec.parseTargets(targets));
        Tokenizer tok = Tokenizers.load(modelPath);
        FrozenLlama base;
        try (TensorSource src = ModelFiles.open(modelPath)) { base = FrozenLlama.load(src); }
        int ctx = base.config().maxPositions();
        if (seqLen + 1 > ctx) throw new IllegalArgumentException("--seq-len " + seqLen + " exceeds the model's context of " + ctx + " − 1");
        TrainData.Split split = TrainData.load(data, tok, seqLen, evalFraction);
        TrainableAdapter adapter = new TrainableAdapter(spec, base.config()).initPeft(seed);
        int spe = (split.train().size() + batch - 1) / batch;
        int steps = length == null ? spe : length.steps != null ? length.steps : (int) Math.max(1, Math.ceil(length.epochs * spe));
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        TrainOptions opt = new TrainOptions(steps, batch, lr, Math.min(warmup, steps), minLrRatio, weightDecay, maxGradNorm, seed, nThreads, evalEvery, saveEvery);
        LlamaBackprop bp = new LlamaBackprop(base);
        Path ckpt = out.resolve("checkpoint");
        System.err.printf(Locale.ROOT, "train: %s rank %d%s alpha %s%s on %s; %,d adapter parameters; targets %s%n", m.name().toLowerCase(Locale.ROOT),
                rank, m == LoraSpec.Method.BDLORA ? " nblocks " + nb : "", fmt(a), rslora ? " (rsLoRA)" : "", modelPath.getFileName(),
                adapter.parameterCount(), targets);
        System.err.printf(Locale.ROOT, "data: %s (%s): %d training sequences (%,d tokens), %d held out; %d steps of %d (%.2f epochs), %d threads%n",
                data, split.promptCompletion() ? "prompt/completion, loss on completions" : "language modelling", split.train().size(), split.trainTokens(),
                split.eval().size(), steps, batch, steps / (double) spe, nThreads);
        try (LoraTrainer trainer = new LoraTrainer(bp, adapter, split, opt)) {
            if (resume) {
                if (!Checkpoint.exists(ckpt)) throw new IllegalArgumentException("--resume: no checkpoint in " + ckpt);
                trainer.resume(Checkpoint.load(ckpt));
                System.err.printf("resumed at step %d of %d from %s%n", trainer.step(), steps, ckpt);
            }
            double before = trainer.evaluate(split.eval());
            if (!split.eval().isEmpty())
                System.err.printf(Locale.ROOT, "eval at step %d: loss %.4f, perplexity %.3f%n", trainer.step(), before, Math.exp(before));
            int startStep = trainer.step();
            long t0 = System.nanoTime();
            long[] tokens = {0};
            double[] ema = {Double.NaN};
            boolean tty = System.console() != null;   // a progress bar on a terminal; plain lines in logs
            int every = Math.max(1, steps / 20);
            ProgressBar pb = quiet || !tty ? null : new ProgressBarBuilder().setTaskName("train").setInitialMax(steps)
                    .setStyle(ProgressBarStyle.ASCII).setConsumer(new ConsoleProgressBarConsumer(System.err, 110))
                    .startsFrom(trainer.step(), Duration.ZERO).setUpdateIntervalMillis(250).build();
            try {
                trainer.train(r -> {
                    tokens[0] += r.tokens();
                    ema[0] = Double.isNaN(ema[0]) ? r.loss() : 0.9 * ema[0] + 0.1 * r.loss();
                    double tps = tokens[0] / ((System.nanoTime() - t0) / 1e9);
                    if (pb != null) {
                        pb.stepTo(r.step());
                        pb.setExtraMessage(String.format(Locale.ROOT, "loss %.3f lr %.1e %,.0f tok/s", ema[0], r.lr(), tps));
                    } else if (!quiet && (r.step() % every == 0 || r.step() == steps))
                        System.err.printf(Locale.ROOT, "step %d/%d: loss %.4f (smoothed %.4f), lr %.2e, grad norm %.3f, %,.0f tokens/s%n",
                                r.step(), steps, r.loss(), ema[0], r.lr(), r.gradNorm(), tps);
                }, ckpt, s -> System.err.printf(Locale.ROOT, "%neval at step %d: loss %.4f, perplexity %.3f%n", s,
                        trainer.evaluate(split.eval()), Math.exp(trainer.evaluate(split.eval()))));
            } finally {
                if (pb != null) pb.close();
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            double after = trainer.evaluate(split.eval());
            System.err.printf(Locale.ROOT, "trained %d steps in %.1f s: %,.0f tokens/s (%,d tokens); last-step loss %.4f (smoothed)%n",
                    steps - startStep, secs, tokens[0] / secs, tokens[0], ema[0]);
            if (!split.eval().isEmpty())
                System.err.printf(Locale.ROOT, "eval loss %.4f → %.4f, perplexity %.3f → %.3f%n", before, after, Math.exp(before), Math.exp(after));
            adapter.writePeft(out, model);
            Files.writeString(out.resolve("train_metrics.json"), String.format(Locale.ROOT,
                    "{\"method\": \"%s\", \"rank\": %d, \"nblocks\": %d, \"alpha\": %s, \"parameters\": %d, \"steps\": %d, \"seed\": %d,%n"
                            + " \"eval_loss_before\": %.6f, \"eval_loss\": %.6f, \"eval_perplexity\": %.6f, \"tokens_per_s\": %.1f, \"data\": \"%s\"}%n",
                    m.name().toLowerCase(Locale.ROOT), rank, nb, fmt(a), adapter.parameterCount(), steps, seed, before, after, Math.exp(after),
                    tokens[0] / secs, data.getFileName()));
            if (noCheckpoint) deleteCheckpoint(ckpt);
            if (task != null) measureTask(modelPath, tok, out);
            System.err.println("wrote " + out);
        }
        return 0;
    }

    /** Greedy generation on the held-out prompts, base model vs the written adapter served through the engine. */
    private void measureTask(Path modelPath, Tokenizer tok, Path adapterDir) throws IOException {
        String report = TaskEvalCommand.measure(modelPath, tok, dev.bdserve.lab.train.SynthTask.parse(task), data, evalFraction, adapterDir, taskPrompts, taskTp, out);
        System.err.print(report);
    }

    private static void deleteCheckpoint(Path ckpt) throws IOException {
        if (!Files.isDirectory(ckpt)) return;
        try (var s = Files.list(ckpt)) { for (Path p : s.toList()) Files.delete(p); }
        Files.delete(ckpt);
    }

    private static String fmt(double d) { return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d); }
}
