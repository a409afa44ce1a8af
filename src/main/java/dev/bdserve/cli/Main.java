package dev.bdserve.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code ./bdserve} launcher. */
@Command(name = "bdserve", mixinStandardHelpOptions = true, version = "bdserve 0.1.0",
        description = "Serve one Llama base model with many LoRA / BD-LoRA adapters.",
        subcommands = {ServeCommand.class, GenerateCommand.class, ConvertCommand.class, SynthCommand.class, AdapterCommand.class, BenchCommand.class,
                TrainCommand.class, TaskEvalCommand.class, TrainStudyCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override public void run() { CommandLine.usage(this, System.out); }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line {@code ./bdserve} runs: bad input (a malformed model file, an unknown name, a bad option value) exits 2 with one clear line. */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof IllegalArgumentException || ex instanceof dev.bdserve.model.ModelFormatException
                    || ex instanceof dev.bdserve.model.hub.ModelResolutionException
                    || ex instanceof java.io.UncheckedIOException || ex instanceof java.io.IOException) {
                cmd.getErr().println("bdserve: " + ex.getMessage());
                if (System.getenv("BDSERVE_DEBUG") != null) ex.printStackTrace(cmd.getErr());
                return 2;
            }
            throw ex;
        });
        return cl;
    }
}
