package dev.bdserve.cli;

import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.GenerationResult;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.SamplingParams;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code ./bdserve generate}: completes one prompt, text on stdout, timing on stderr. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate a completion. Prints the text on stdout and prefill/decode speed on stderr.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-p", "--prompt"}, defaultValue = "", description = "Prompt text (default: empty, i.e. start from BOS).")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "256", description = "Most new tokens (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "Sampling temperature; 0 = greedy (default).")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass (default: ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens; 0 = all.")
    int topK;

    @Option(names = "--min-p", defaultValue = "0", description = "Drop tokens below min-p × the top probability.")
    double minP;

    @Option(names = "--seed", description = "Random seed for sampling.")
    Long seed;

    @Option(names = "--stop", description = "Stop string (repeatable); not included in the output.")
    List<String> stop;

    @Option(names = "--ignore-eos", description = "Keep generating after EOS.")
    boolean ignoreEos;

    @Option(names = "--prefill-chunk", defaultValue = "512", description = "Most prompt tokens per step.")
    int prefillChunk;

    @Option(names = "--adapter", description = "A PEFT LoRA or BD-LoRA adapter folder to apply.")
    java.nio.file.Path adapter;

    @Option(names = "--max-lora-rank", defaultValue = "256", description = "Largest adapter rank accepted (default: ${DEFAULT-VALUE}).")
    int maxLoraRank;

    @Option(names = "--stats", description = "Print collective counts and LoRA work per step on stderr.")
    boolean stats;

    static String perStep(dev.bdserve.parallel.CommStats c, long steps) {
        StringBuilder sb = new StringBuilder();
        c.callCounts().forEach((k, v) -> {
            if (k == dev.bdserve.parallel.Collective.CONTROL) return;
            sb.append(sb.isEmpty() ? "" : ", ").append(k.name().toLowerCase()).append('=').append(String.format("%.1f", v / (double) steps));
        });
        return sb.isEmpty() ? "none" : sb.toString();
    }

    @Override
    public Integer call() {
        SamplingParams sp = new SamplingParams(temperature, topK, topP, minP, seed, stop, ignoreEos);
        try (ModelOptions.Loaded m = modelOptions.load()) {
            int[] ids = m.tokenizer().encode(prompt, true);
            java.io.PrintWriter out = spec.commandLine().getOut();       // UTF-8 stdout (Main), or a test's writer
            Generator gen = new Generator(m.runner(), m.tokenizer(), prefillChunk);
            int adapterId = adapter == null ? -1 : m.runner().addAdapter(
                    dev.bdserve.lora.PeftAdapterLoader.load(adapter.getFileName().toString(), adapter, m.runner().config(), maxLoraRank));
            var comm0 = m.runner().commStats().snapshot();
            List<GenerationResult> r = gen.generate(List.of(new GenerationRequest(ids, maxTokens, sp, adapterId)), (seq, delta) -> out.print(delta));
            out.println();
            out.flush();
            System.err.printf("prompt %d tokens, %.1f tokens/s prefill; generated %d tokens, %.1f tokens/s decode; finish_reason=%s%n",
                    gen.prefillTokens(), gen.prefillTokens() / Math.max(1e-9, gen.prefillSeconds()),
                    r.get(0).tokens().length, gen.decodeTokens() / Math.max(1e-9, gen.decodeSeconds()), r.get(0).finishReason());
            if (stats) {
                long steps = Math.max(1, gen.decodeSteps() + 1);
                var comm = m.runner().commStats().minus(comm0);
                var lora = m.runner().loraStats();
                System.err.printf("stats (rank 0, TP %d): %d steps; collectives per step: %s; LoRA per step: %.0f bytes, %.0f FLOPs, %.3f ms%n",
                        m.runner().tpSize(), steps, perStep(comm, steps), lora.bytes() / (double) steps, lora.flops() / (double) steps,
                        lora.nanos() / 1e6 / steps);
            }
        }
        return 0;
    }
}
