package dev.bdserve.cli;

import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.GgmlType;
import dev.bdserve.model.gguf.GgufModelWriter;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.HfTokenizerJsonWriter;
import dev.bdserve.tokenizer.Llama2cTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code ./bdserve convert}: writes any loadable model as an HF folder or a GGUF file. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Write a model (e.g. a llama2.c checkpoint) as a Hugging Face folder (config.json, model.safetensors, tokenizer.json) "
                + "or, with --to gguf, as a GGUF file llama.cpp loads (its vocabulary: SentencePiece from llama2.c, or byte-level BPE "
                + "from a tokenizer.json such as Llama 3's or Qwen2's).")
final class ConvertCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--out", required = true, description = "Output folder (hf) or file (gguf).")
    Path out;

    @Option(names = "--to", defaultValue = "hf", description = "hf or gguf (default: ${DEFAULT-VALUE}).")
    String to;

    @Option(names = "--type", defaultValue = "f32", description = "With --to gguf: every matrix's type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k "
            + "(default: ${DEFAULT-VALUE}; rows that are not whole blocks fall back to f16; for llama.cpp's mixed recipes use quantize).")
    String type;

    @Option(names = "--dtype", description = "Weight dtype of the output (f32, bf16, f16; default: as stored).")
    String dtype;

    @Override
    public Integer call() throws Exception {
        modelOptions.rejectQuantizeOption("quantize --type, or convert --to gguf --type");
        Path in = modelOptions.resolve();
        if (to.equals("gguf")) return toGguf(in);
        if (!to.equals("hf")) throw new IllegalArgumentException("--to must be hf or gguf, got '" + to + "'");
        int maxLen;
        try (TensorSource src = ModelFiles.open(in)) {
            DType dt = dtype == null ? null : DType.parse(dtype);
            HfModelWriter.write(out, src, dt);
            maxLen = src.config().maxPositions();
        }
        Tokenizer tok = Tokenizers.load(in);
        if (tok instanceof Llama2cTokenizer l2c) HfTokenizerJsonWriter.write(l2c, out, maxLen);
        else if (java.nio.file.Files.isDirectory(in))  // an HF folder already: carry its tokenizer files over
            for (String f : new String[]{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
                Path src = in.resolve(f);
                if (java.nio.file.Files.exists(src) && !src.equals(out.resolve(f)))
                    java.nio.file.Files.copy(src, out.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        System.err.println("wrote " + out);
        return 0;
    }

    private int toGguf(Path in) {
        GgmlType t = GgufModelWriter.parseType(type);
        Tokenizer tok = Tokenizers.load(in);
        try (TensorSource src = ModelFiles.open(in)) {
            String name = in.getFileName().toString().replaceFirst("\\.(bin|gguf|safetensors)$", "");
            int vocab = src.config().vocabSize();
            GgufModelWriter.write(out, src, t, name, w -> GgufTokenizers.writeMetadata(tok, w, vocab));
        }
        System.err.println("wrote " + out + " (" + t + ")");
        return 0;
    }
}
