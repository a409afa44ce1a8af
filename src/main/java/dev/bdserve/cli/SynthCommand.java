package dev.bdserve.cli;

import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code ./bdserve synth ...}: synthetic models (and later adapters and data) for tests and benchmarks. */
@Command(name = "synth", mixinStandardHelpOptions = true, description = "Write synthetic models for tests and benchmarks.",
        subcommands = {SynthCommand.Model.class})
final class SynthCommand implements Runnable {
    @Override public void run() { picocli.CommandLine.usage(this, System.out); }

    @Command(name = "model", mixinStandardHelpOptions = true,
            description = "Write a random-weight model of a real shape in HF layout, deterministic from the seed.")
    static final class Model implements Callable<Integer> {
        @Option(names = "--shape", required = true, description = "One of: ${COMPLETION-CANDIDATES}.", completionCandidates = Shapes.class)
        String shape;
        @Option(names = "--dtype", defaultValue = "bf16", description = "f32, bf16 or f16 (default: ${DEFAULT-VALUE}).")
        String dtype;
        @Option(names = "--seed", defaultValue = "0") long seed;
        @Option(names = "--out", required = true) Path out;

        @Override
        public Integer call() throws Exception {
            DType dt = DType.parse(dtype);
            SynthModel m = new SynthModel(ModelShapes.get(shape), dt, seed);
            HfModelWriter.write(out, m, dt);
            System.err.printf("wrote %s (%s, %,d parameters, %s)%n", out, shape, m.config().parameterCount(), dt);
            return 0;
        }
    }

    static final class Shapes implements Iterable<String> {
        @Override public java.util.Iterator<String> iterator() { return ModelShapes.names().iterator(); }
    }
}
