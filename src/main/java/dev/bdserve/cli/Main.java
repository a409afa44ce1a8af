package dev.bdserve.cli;

import dev.bdserve.tensor.VectorWidth;
import java.io.PrintStream;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code ./bdserve} launcher. */
@Command(name = "bdserve", mixinStandardHelpOptions = true, version = "bdserve 0.1.0",
        description = "Serve one Llama base model with many LoRA / BD-LoRA adapters.",
        subcommands = {ServeCommand.class, GenerateCommand.class, ConvertCommand.class, QuantizeCommand.class, SynthCommand.class, AdapterCommand.class, BenchCommand.class,
                TrainCommand.class, TaskEvalCommand.class, TrainStudyCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override public void run() { CommandLine.usage(this, System.out); }

    public static void main(String[] args) {
        int bad = checkVectorWidth(System.err);
        System.exit(bad != 0 ? bad : commandLine().execute(args));
    }

    /**
     * Initialises {@link VectorWidth} before any command: a bad {@value VectorWidth#PROPERTY} returns 2 after one
     * clear line on {@code err}; a width wider than the CPU's vectors (which runs, slowly, in the Vector API's Java
     * fallback) is warned about. Returns 0 otherwise.
     */
    static int checkVectorWidth(PrintStream err) {
        try {
            String warning = widthWarning(VectorWidth.BITS, VectorWidth.HOST_BITS);
            if (warning != null) err.println(warning);
            return 0;
        } catch (ExceptionInInitializerError e) {
            err.println("bdserve: " + e.getCause().getMessage());
            return 2;
        }
    }

    /** The warning for kernels at {@code bits} on a CPU whose vectors are {@code hostBits} wide, or null when they fit. */
    static String widthWarning(int bits, int hostBits) {
        return bits <= hostBits ? null : "bdserve: warning: " + VectorWidth.PROPERTY + "=" + bits + " is wider than this CPU's "
                + hostBits + "-bit vectors: the kernels run in the Vector API's slow Java fallback";
    }

    /** The command line {@code ./bdserve} runs: bad input (a malformed model file, an unknown name, a bad option value) exits 2 with one clear line. */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        // generated text is UTF-8 whatever the locale's stdout encoding
        cl.setOut(new java.io.PrintWriter(new java.io.OutputStreamWriter(new java.io.FileOutputStream(java.io.FileDescriptor.out),
                java.nio.charset.StandardCharsets.UTF_8), true));
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
