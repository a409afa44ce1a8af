package dev.bdserve.cli;

import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.GgufModelWriter;
import dev.bdserve.model.gguf.GgufRecipe;
import dev.bdserve.model.gguf.QuantizingSource;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.Console;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.function.LongConsumer;

/**
 * {@code ./bdserve quantize}: writes a float model (HF folder or F32/F16/BF16 GGUF) as a GGUF quantized the way
 * llama-quantize's recipe of the same name does, with its tokenizer. An already-quantized GGUF is refused rather
 * than dequantized and requantized (which would round twice).
 */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = "Quantize a model (HF folder or F32/F16/BF16 GGUF) to a GGUF file with llama-quantize's recipe: q8_0, q4_0, q4_k_m or q5_k_m "
                + "(per-tensor types as llama.cpp chooses them; an already-quantized GGUF is refused).")
final class QuantizeCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--type", required = true, description = "Recipe: q8_0, q4_0, q4_k_m or q5_k_m.")
    String type;

    @Option(names = "--out", required = true, description = "Output GGUF file.")
    Path out;

    @Override
    public Integer call() {
        modelOptions.rejectQuantizeOption("--type");
        GgufRecipe recipe = ModelOptions.parseRecipe("--type", type);
        Path in = modelOptions.resolve();
        if (Files.isRegularFile(in) && in.getFileName().toString().endsWith(".gguf")) QuantizingSource.requireFloat(in);
        Tokenizer tok = Tokenizers.load(in);
        long start = System.nanoTime();
        try (TensorSource src = ModelFiles.open(in)) {
            String name = in.getFileName().toString().replaceFirst("\\.(bin|gguf|safetensors)$", "");
            int vocab = src.config().vocabSize();
            long total = GgufModelWriter.matrixWeights(src);
            try (ProgressBar bar = bar(total)) {
                LongConsumer step = bar == null ? n -> {} : bar::stepBy;
                GgufModelWriter.write(out, src, recipe, name, w -> GgufTokenizers.writeMetadata(tok, w, vocab), step);
            }
        }
        System.err.printf("wrote %s (%s, %.1f MiB) in %.1f s%n", out, recipe.label(), sizeMiB(out), (System.nanoTime() - start) / 1e9);
        return 0;
    }

    /** A bar over the matrices' weights (in millions) on stderr when it is a terminal, else null. */
    private static ProgressBar bar(long weights) {
        Console console = System.console();
        if (console == null || !console.isTerminal()) return null;
        return new ProgressBarBuilder()
                .setTaskName("quantizing")
                .setInitialMax(weights)
                .setUnit("M weights", 1_000_000)
                .setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(200)
                .showSpeed()
                .setConsumer(new ConsoleProgressBarConsumer(System.err, TerminalDownloadProgress.barWidth(System.getenv("COLUMNS"))))
                .build();
    }

    private static double sizeMiB(Path p) {
        try {
            return Files.size(p) / (double) (1 << 20);
        } catch (java.io.IOException e) {
            return Double.NaN;
        }
    }
}
