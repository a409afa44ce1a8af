package dev.bdserve.cli;

import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.GgufRecipe;
import dev.bdserve.model.gguf.QuantizingSource;
import dev.bdserve.model.hub.ModelResolver;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Options shared by commands that load a model: the model, quantization at load, threads and tensor parallelism. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = ModelResolver.DEFAULT_MODEL,
            description = "Model folder (HF layout), llama2.c .bin file, or a known name (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = "--quantize", paramLabel = "TYPE",
            description = "Quantize a float model's matrices as it loads, as `quantize --type TYPE` would write them: q8_0, q4_0, q4_k_m or q5_k_m.")
    String quantize;

    @Option(names = "--threads", description = "Worker threads in all (default: all cores); each TP rank gets threads/tp (at least 1).")
    Integer threads;

    @Option(names = "--tp", defaultValue = "1", description = "Tensor-parallel ranks (default: ${DEFAULT-VALUE}).")
    int tp;

    @Option(names = "--tp-transport", defaultValue = "threads", description = "threads (ranks in this JVM) or mpi (one process per rank, under mpirun).")
    String transport;

    @Option(names = "--lora-sharding", defaultValue = "auto", description = "auto, replicated, slora or bdlora (default: ${DEFAULT-VALUE}).")
    String loraSharding;

    @Option(names = "--lora-fallback", defaultValue = "replicated", description = "Sharding of adapters auto does not run as BD-LoRA: replicated or slora.")
    String loraFallback;

    @Option(names = "--kv-cache-dtype", defaultValue = "f32",
            description = "f32 or bf16 (half the memory and attention reads; logits within bf16's rounding) (default: ${DEFAULT-VALUE}).")
    String kvCacheDtype;

    @Option(names = "--kernels", defaultValue = "auto",
            description = "Matrix-product kernels: java (Vector API), native (oneDNN 2.x bf16 matmul for multi-token products, "
                    + "libdnnl.so.2) or auto (native when oneDNN loads) (default: ${DEFAULT-VALUE}).")
    String kernels;

    @Option(names = "--native-copies", defaultValue = "none",
            description = "none or bf16: hold a bf16 copy of each quantized matrix for its native products (from 5 tokens for Q8_0, 2 for others) "
                    + "(2 bytes per weight more memory; faster batched decode and prefill) (default: ${DEFAULT-VALUE}).")
    String nativeCopies;

    @Option(names = "--tp-sim-latency-us", defaultValue = "0", description = "Add this many µs of busy-wait to every collective (simulated network; figures labelled simulated).")
    double simLatencyUs;

    /** Threads in all; under mpi each process is one rank, so it gets the machine's share of one rank. */
    int threadCount() {
        if (threads != null) return threads;
        int cores = Runtime.getRuntime().availableProcessors();
        return transport.equals("mpi") ? Math.max(tp, cores) : cores;
    }

    Path resolve() { return ModelResolver.fromEnvironment(TerminalDownloadProgress.ifTerminal()).resolve(model); }

    /** The {@code --quantize} recipe, or null; checked before anything loads. */
    GgufRecipe recipe() { return quantize == null ? null : parseRecipe("--quantize", quantize); }

    /** The recipe named {@code value} of option {@code option}, refusing an unknown one with the option's name. */
    static GgufRecipe parseRecipe(String option, String value) {
        try {
            return GgufRecipe.parse(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(option + ": " + e.getMessage(), e);
        }
    }

    /** Opens the model at {@code p}, quantized at load when {@code --quantize} is given (refusing an already-quantized GGUF). */
    TensorSource open(Path p) {
        GgufRecipe r = recipe();
        TensorSource src = ModelFiles.open(p);
        if (r == null) return src;
        try {
            return QuantizingSource.of(src, r);
        } catch (RuntimeException e) {
            src.close();
            throw new IllegalArgumentException("--quantize " + quantize + ": " + e.getMessage(), e);
        }
    }

    /** Refuses {@code --quantize} in a command that writes a model rather than runs one. */
    void rejectQuantizeOption(String instead) {
        if (quantize != null)
            throw new IllegalArgumentException("--quantize quantizes a model as it loads to run (serve, generate, bench); here use " + instead);
    }

    TpGroup.Options groupOptions() { return groupOptions(tp, threadsPerRank()); }

    /** These options for a group of {@code ranks} ranks with {@code threadsPerRank} threads each. */
    private TpGroup.Options groupOptions(int ranks, int threadsPerRank) {
        if (!transport.equals("threads") && !transport.equals("mpi"))
            throw new IllegalArgumentException("unknown --tp-transport '" + transport + "' (expected threads or mpi)");
        return new TpGroup.Options(ranks, threadsPerRank, LoraSharding.parse(loraSharding),
                LoraSharding.parse(loraFallback), simLatencyUs).withKvDtype(dev.bdserve.model.KvDtype.parse(kvCacheDtype))
                .withKernels(dev.bdserve.tensor.dnnl.NativeKernels.Choice.parse(kernels))
                .withNativeCopies(dev.bdserve.tensor.dnnl.NativeKernels.Copies.parse(nativeCopies));
    }

    /** Threads each rank's kernels use: the threads split over the ranks, at least one. */
    int threadsPerRank() { return Math.max(1, threadCount() / tp); }

    /**
     * A second group of {@code ranks} ranks over the threads transport in this JVM, on the same model, with
     * {@code threadsPerRank} threads per rank and the main one's other options (e.g. TP 1 on one thread to set TP 2's
     * speed-up against).
     */
    TpGroup loadThreadsGroup(int ranks, int threadsPerRank, long kvBytes) {
        Path p = resolve();
        return TpGroup.threads(() -> open(p), groupOptions(ranks, threadsPerRank).withKvCache(kvBytes, 16));
    }

    /**
     * A model group and its tokenizer (closed together); {@code watchdog} is rank 0's collective watchdog under the mpi
     * transport when one was asked for, else null.
     */
    record Loaded(Path path, TpGroup runner, Tokenizer tokenizer, int threads, AutoCloseable processComm,
                  dev.bdserve.parallel.WatchedCommunicator watchdog) implements AutoCloseable {
        Loaded(Path path, TpGroup runner, Tokenizer tokenizer, int threads, AutoCloseable processComm) {
            this(path, runner, tokenizer, threads, processComm, null);
        }

        @Override public void close() {
            runner.close();
            if (watchdog != null) watchdog.close();
            if (processComm != null) try { processComm.close(); } catch (Exception ignored) { /* MPI_Finalize */ }
        }
    }

    Loaded load() { return load(TpGroup.Options.DEFAULT_KV_BYTES); }

    /** Loads with a KV pool of {@code kvBytes} per rank. */
    Loaded load(long kvBytes) { return load(groupOptions().withKvCache(kvBytes, 16)); }

    /** Loads with explicit group options (e.g. a KV cache budget and block size). */
    Loaded load(TpGroup.Options o) { return load(o, null); }

    /**
     * Loads with explicit group options; under the mpi transport rank 0's collectives are watched with
     * {@code collectiveTimeout} (null: not watched), see {@link Loaded#watchdog}.
     */
    Loaded load(TpGroup.Options o, java.time.Duration collectiveTimeout) {
        Path p = resolve();
        if (recipe() != null) System.err.println("--quantize " + recipe().label() + ": quantizing " + p + "'s matrices as they load");
        Tokenizer tok = Tokenizers.load(p);
        if (transport.equals("mpi")) {
            if (!dev.bdserve.parallel.mpi.MpiCommunicator.launchedByMpirun())
                throw new IllegalArgumentException("--tp-transport mpi runs one process per rank under mpirun: use ./bdserve, which starts mpirun (docs/mpi.md)");
            var comm = dev.bdserve.parallel.mpi.MpiCommunicator.init();
            var watched = comm.rank() == 0 && collectiveTimeout != null ? new dev.bdserve.parallel.WatchedCommunicator(comm, collectiveTimeout) : null;
            TpGroup g = TpGroup.forProcess(watched != null ? watched : comm, () -> open(p), o, 1024);
            if (g == null) {            // a rank other than 0: rank 0 has shut the group down
                comm.close();
                System.exit(0);
            }
            return new Loaded(p, g, tok, threadCount(), comm, watched);
        }
        TpGroup g = TpGroup.threads(() -> open(p), o);
        return new Loaded(p, g, tok, threadCount(), null);
    }
}
