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
        subcommands = {SynthCommand.Model.class, SynthCommand.Adapter.class, SynthDataCommand.class})
final class SynthCommand implements Runnable {
    @Override public void run() { picocli.CommandLine.usage(this, System.out); }

    @Command(name = "model", mixinStandardHelpOptions = true,
            description = "Write a random-weight model of a real shape in HF layout, deterministic from the seed.")
    static final class Model implements Callable<Integer> {
        @Option(names = "--shape", required = true, description = "One of: ${COMPLETION-CANDIDATES}.", completionCandidates = Shapes.class)
        String shape;
        @Option(names = "--arch", description = "llama, qwen2, qwen3 or mistral: the family of the model, at a llama shape's sizes "
                + "(default: the shape's own).") String arch;
        @Option(names = "--dtype", defaultValue = "bf16", description = "f32, bf16 or f16 (default: ${DEFAULT-VALUE}).")
        String dtype;
        @Option(names = "--seed", defaultValue = "0") long seed;
        @Option(names = "--out", required = true, description = "Output folder (hf) or file (gguf).") Path out;
        @Option(names = "--tokenizer", paramLabel = "DIR", description = "A real tokenizer: a folder with tokenizer.json (and tokenizer_config.json), "
                + "copied into the model, whose vocabulary size, BOS and EOS the model takes (hf format only; default: a synthetic tokenizer).")
        Path tokenizer;
        @Option(names = "--format", defaultValue = "hf", description = "hf, or gguf (then --dtype is the GGUF type: f32, f16, bf16, q8_0, q4_0, ...) "
                + "(default: ${DEFAULT-VALUE}).") String format;

        @Override
        public Integer call() throws Exception {
            if (format.equals("gguf")) {
                if (tokenizer != null) throw new IllegalArgumentException("--tokenizer works with --format hf only");
                dev.bdserve.model.gguf.GgmlType t = dev.bdserve.model.gguf.GgufModelWriter.parseType(dtype);
                SynthModel m = new SynthModel(ModelShapes.get(shape, arch), DType.F32, seed);
                Path tmp = java.nio.file.Files.createTempDirectory("bdserve-synth");
                try {
                    dev.bdserve.tokenizer.SynthTokenizer.write(tmp, m.config().vocabSize());
                    var tok = dev.bdserve.tokenizer.Tokenizers.load(tmp.resolve("tokenizer.bin"));
                    dev.bdserve.model.gguf.GgufModelWriter.write(out, m, t, shape, w -> dev.bdserve.tokenizer.GgufTokenizers.writeMetadata(tok, w));
                } finally {
                    try (var files = java.nio.file.Files.walk(tmp)) { files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete()); }
                }
                System.err.printf("wrote %s (%s, %s, %,d parameters, %s)%n", out, shape, m.config().variant().family(), m.config().parameterCount(), t);
                return 0;
            }
            if (!format.equals("hf")) throw new IllegalArgumentException("--format must be hf or gguf, got '" + format + "'");
            DType dt = DType.parse(dtype);
            dev.bdserve.model.LlamaConfig cfg = ModelShapes.get(shape, arch);
            if (tokenizer != null) {
                try (var tok = dev.bdserve.tokenizer.HfTokenizer.load(tokenizer)) {
                    int[] eos = tok.eosIds();
                    if (eos.length == 0) throw new IllegalArgumentException("the tokenizer in " + tokenizer + " has no EOS token");
                    cfg = cfg.withVocabulary(tok.vocabSize(), Math.max(tok.bosId(), 0), java.util.Arrays.stream(eos).boxed().toList());
                }
            }
            SynthModel m = new SynthModel(cfg, dt, seed);
            HfModelWriter.write(out, m, dt);
            if (tokenizer == null) dev.bdserve.tokenizer.SynthTokenizer.write(out, m.config().vocabSize());
            else for (String f : new String[]{"tokenizer.json", "tokenizer_config.json"})
                if (java.nio.file.Files.isRegularFile(tokenizer.resolve(f)))
                    java.nio.file.Files.copy(tokenizer.resolve(f), out.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            System.err.printf("wrote %s (%s, %s, %,d parameters, %s)%n", out, shape, m.config().variant().family(), m.config().parameterCount(), dt);
            return 0;
        }
    }

    @Command(name = "adapter", mixinStandardHelpOptions = true,
            description = "Write a random PEFT adapter (LoRA, or BD-LoRA with --bd-nblocks) with non-zero B for a base model.")
    static final class Adapter implements Callable<Integer> {
        @picocli.CommandLine.Mixin ModelOptions modelOptions;
        @Option(names = "--shape", description = "Use a named model shape instead of --model.") String shape;
        @Option(names = "--rank", required = true) int rank;
        @Option(names = "--bd-nblocks", defaultValue = "0", description = "Blocks of a BD-LoRA adapter (0: ordinary LoRA).") int nblocks;
        @Option(names = "--targets", defaultValue = "all", description = "Modules: all, or a list like q,k,v,o,gate,up,down.") String targets;
        @Option(names = "--dtype", defaultValue = "f32") String dtype;
        @Option(names = "--alpha", description = "lora_alpha (default: the rank, i.e. scaling 1).") Double alpha;
        @Option(names = "--rslora") boolean rslora;
        @Option(names = "--strength", defaultValue = "0.3", description = "Relative size of the LoRA delta (default: ${DEFAULT-VALUE}).") double strength;
        @Option(names = "--seed", defaultValue = "0") long seed;
        @Option(names = "--out", required = true) Path out;

        @Override public Integer call() {
            dev.bdserve.model.LlamaConfig c;
            String base;
            if (shape != null) { c = ModelShapes.get(shape); base = shape; }
            else { c = AdapterCommand.baseConfig(modelOptions); base = modelOptions.model; }
            var a = new dev.bdserve.lora.SynthAdapter(rank, nblocks, dev.bdserve.lora.SynthAdapter.parseTargets(targets), DType.parse(dtype),
                    alpha != null ? alpha : rank, rslora, strength, seed);
            a.write(out, c, base);
            System.err.println("wrote " + out);
            return 0;
        }
    }

    static final class Shapes implements Iterable<String> {
        @Override public java.util.Iterator<String> iterator() { return ModelShapes.names().iterator(); }
    }
}
