package dev.bdserve.cli;

import picocli.CommandLine.Command;

/** {@code ./bdserve bench ...}: benchmarks that print JSON. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (JSON output).",
        subcommands = {BenchDecodeCommand.class, ThroughputCommand.class, PeerBenchCommand.class, ServeBenchCommand.class, StudyCommand.class, CostModelCommand.class})
final class BenchCommand implements Runnable {
    @Override public void run() { picocli.CommandLine.usage(this, System.out); }
}
