package dev.bdserve.cli;

import dev.bdserve.lora.AdapterTools;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code ./bdserve adapter ...}: inspect and convert adapters. */
@Command(name = "adapter", mixinStandardHelpOptions = true, description = "Inspect and convert LoRA / BD-LoRA adapters.",
        subcommands = {AdapterCommand.Inspect.class, AdapterCommand.Densify.class, AdapterCommand.Convert.class})
final class AdapterCommand implements Runnable {
    @Override public void run() { picocli.CommandLine.usage(this, System.out); }

    static LlamaConfig baseConfig(ModelOptions mo) {
        try (TensorSource src = ModelFiles.open(mo.resolve())) { return src.config(); }
    }

    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = "Modules, ranks, alpha, scaling, parameters, BD blocks, supported TP degrees and sharding, parameter-matched BD ranks.")
    static final class Inspect implements Callable<Integer> {
        @Mixin ModelOptions modelOptions;
        @Parameters(index = "0", description = "Adapter folder.") Path dir;
        @Option(names = "--match-nblocks", split = ",", defaultValue = "2,4,8",
                description = "nblocks for the parameter-matched BD rank of a dense adapter (default: ${DEFAULT-VALUE}).") int[] nblocks;
        @Option(names = "--max-lora-rank", defaultValue = "1024") int maxRank;

        @Override public Integer call() {
            LlamaConfig c = baseConfig(modelOptions);
            LoraAdapter a = PeftAdapterLoader.load(dir.getFileName().toString(), dir, c, maxRank);
            System.out.print(AdapterTools.inspect(a, c, nblocks));
            return 0;
        }
    }

    @Command(name = "convert", mixinStandardHelpOptions = true,
            description = "Write a PEFT adapter (LoRA or BD-LoRA) as a GGUF LoRA file for llama.cpp (--lora), for the base model --model.")
    static final class Convert implements Callable<Integer> {
        @Mixin ModelOptions modelOptions;
        @Option(names = "--to", defaultValue = "gguf", description = "Output format: gguf (default).") String to;
        @Parameters(index = "0", description = "PEFT adapter folder.") Path in;
        @Parameters(index = "1", description = "Output file.") Path out;
        @Option(names = "--max-lora-rank", defaultValue = "1024") int maxRank;

        @Override public Integer call() {
            if (!to.equals("gguf")) throw new IllegalArgumentException("--to must be gguf, got '" + to + "'");
            LlamaConfig c = baseConfig(modelOptions);
            LoraAdapter a = PeftAdapterLoader.load(in.getFileName().toString(), in, c, maxRank);
            dev.bdserve.lora.GgufLoraAdapters.write(a, c, out);
            System.err.println("wrote " + out + " (" + a.parameters() + " parameters" + (a.isBlockDiagonal() ? ", BD-LoRA written dense" : "") + ")");
            return 0;
        }
    }

    @Command(name = "densify", mixinStandardHelpOptions = true, description = "Write a BD-LoRA adapter as the equal ordinary LoRA adapter (exact).")
    static final class Densify implements Callable<Integer> {
        @Parameters(index = "0", description = "BD-LoRA adapter folder.") Path in;
        @Parameters(index = "1", description = "Output folder.") Path out;

        @Override public Integer call() {
            AdapterTools.densify(in, out);
            System.err.println("wrote " + out);
            return 0;
        }
    }
}
