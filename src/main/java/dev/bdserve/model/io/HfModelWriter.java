package dev.bdserve.model.io;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Writes a Llama-family model (Llama, Qwen2, Qwen3, Mistral: {@link HfConfigIO#toMap}) as a Hugging Face folder: config.json, generation_config.json and
 * model.safetensors, or, when the weights exceed the shard limit, model-0000k-of-0000n.safetensors
 * plus model.safetensors.index.json. Tensors are fetched one at a time from the supplier and written
 * straight into the mapped output file, so a 16 GB model never has to be in memory at once (peak is
 * about one tensor).
 */
public final class HfModelWriter {
    private HfModelWriter() {}

    /** Shard limit used by {@link #write(Path, TensorSource, DType)}: 4 GB. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 4_000_000_000L;

    /** Writes every tensor of {@code src} (HF names and layout) converted to {@code outDtype} (null: as stored). */
    public static void write(Path dir, TensorSource src, DType outDtype) {
        write(dir, src, outDtype, DEFAULT_MAX_SHARD_BYTES);
    }

    /** As {@link #write(Path, TensorSource, DType)} with an explicit shard limit in bytes. */
    public static void write(Path dir, TensorSource src, DType outDtype, long maxShardBytes) {
        DType dt = outDtype != null ? outDtype : src.dtype(LlamaTensorNames.EMBED);
        write(dir, src.config(), src::matrix, src::vector, dt, maxShardBytes);
    }

    /**
     * Writes a model given suppliers: {@code matrices} is called once per 2-D tensor name (projections,
     * embedding, LM head when untied), {@code vectors} once per norm weight, in HF order, each result
     * written before the next is requested. Matrices of another dtype are converted to {@code outDtype}.
     */
    public static void write(Path dir, LlamaConfig cfg, Function<String, Matrix> matrices,
                             Function<String, float[]> vectors, DType outDtype) {
        write(dir, cfg, matrices, vectors, outDtype, DEFAULT_MAX_SHARD_BYTES);
    }

    public static void write(Path dir, LlamaConfig cfg, Function<String, Matrix> matrices,
                             Function<String, float[]> vectors, DType outDtype, long maxShardBytes) {
        if (maxShardBytes <= 0) throw new IllegalArgumentException("maxShardBytes must be positive");
        LlamaConfig out = cfg.withTorchDtype(torchDtype(outDtype));   // the decoder variant kept: config.json names the family
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir + ": " + e.getMessage(), e);
        }

        // Plan shards greedily in HF order.
        List<List<Map.Entry<String, long[]>>> shards = new ArrayList<>();
        List<Map.Entry<String, long[]>> cur = new ArrayList<>();
        long curBytes = 0, total = 0;
        for (Map.Entry<String, long[]> e : LlamaTensorNames.expectedShapes(out).entrySet()) {
            long b = outDtype.bytes();
            for (long d : e.getValue()) b *= d;
            if (!cur.isEmpty() && curBytes + b > maxShardBytes) {
                shards.add(cur);
                cur = new ArrayList<>();
                curBytes = 0;
            }
            cur.add(e);
            curBytes += b;
            total += b;
        }
        shards.add(cur);

        int n = shards.size();
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (int s = 0; s < n; s++) {
            String fileName = n == 1 ? HfModelSource.SINGLE : String.format("model-%05d-of-%05d.safetensors", s + 1, n);
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (Map.Entry<String, long[]> e : shards.get(s)) {
                String name = e.getKey();
                long[] shape = e.getValue();
                if (shape.length == 1) w.addVector(name, outDtype, (int) shape[0], () -> vectors.apply(name));
                else w.addMatrix(name, outDtype, (int) shape[0], (int) shape[1], () -> matrices.apply(name));
                weightMap.put(name, fileName);
            }
            w.write(dir.resolve(fileName));
        }
        try {
            // remove files of an earlier write that would make the folder ambiguous
            try (var old = Files.list(dir)) {
                for (Path f : old.toList()) {
                    String fn = f.getFileName().toString();
                    if (fn.matches("model-\\d{5}-of-\\d{5}\\.safetensors") && !weightMap.containsValue(fn)) Files.delete(f);
                }
            }
            if (n == 1) Files.deleteIfExists(dir.resolve(HfModelSource.INDEX));
            else {
                Files.deleteIfExists(dir.resolve(HfModelSource.SINGLE));
                Map<String, Object> index = new LinkedHashMap<>();
                index.put("metadata", Map.of("total_size", total));
                index.put("weight_map", weightMap);
                HfConfigIO.writeText(dir.resolve(HfModelSource.INDEX), HfConfigIO.toJson(index));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot update " + dir + ": " + e.getMessage(), e);
        }
        HfConfigIO.write(out, dir.resolve(HfModelSource.CONFIG));
        HfConfigIO.writeText(dir.resolve("generation_config.json"), HfConfigIO.generationConfigJson(out));
    }

    static String torchDtype(DType d) {
        return switch (d) {
            case F32 -> "float32";
            case BF16 -> "bfloat16";
            case F16 -> "float16";
        };
    }
}
