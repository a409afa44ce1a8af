package dev.bdserve.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code ./bdserve} launcher. */
@Command(name = "bdserve", mixinStandardHelpOptions = true, version = "bdserve 0.1.0",
        description = "Serve one Llama base model with many LoRA / BD-LoRA adapters.",
        subcommands = {CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override public void run() { CommandLine.usage(this, System.out); }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }
}
