package dev.bdserve.cli;

import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.hub.ModelResolver;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Options shared by commands that load a model. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = ModelResolver.DEFAULT_MODEL,
            description = "Model folder (HF layout), llama2.c .bin file, or a known name (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = "--threads", description = "Worker threads (default: all cores).")
    Integer threads;

    int threadCount() { return threads != null ? threads : Runtime.getRuntime().availableProcessors(); }

    Path resolve() { return ModelResolver.fromEnvironment().resolve(model); }

    /** A model, its tokenizer and the thread pool it runs on (closed together). */
    record Loaded(Path path, LlamaModel model, Tokenizer tokenizer, Parallel pool) implements AutoCloseable {
        @Override public void close() { pool.close(); }
    }

    Loaded load() {
        Path p = resolve();
        Parallel pool = new SpinPool(threadCount());
        try (TensorSource src = ModelFiles.open(p)) {
            LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
            return new Loaded(p, m, Tokenizers.load(p), pool);
        } catch (RuntimeException e) {
            pool.close();
            throw e;
        }
    }
}
