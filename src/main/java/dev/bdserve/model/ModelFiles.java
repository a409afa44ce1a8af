package dev.bdserve.model;

import dev.bdserve.model.io.HfModelSource;
import dev.bdserve.model.io.Llama2cCheckpoint;

import java.nio.file.Files;
import java.nio.file.Path;

/** Opens a model checkpoint in either supported layout. */
public final class ModelFiles {
    private ModelFiles() {}

    /**
     * A folder with config.json (HF layout, one or several safetensors files), a GGUF file or a llama2.c
     * checkpoint file (q/k rows of both permuted to HF layout at load).
     */
    public static TensorSource open(Path path) {
        if (Files.isDirectory(path)) {
            if (Files.exists(path.resolve("config.json"))) return HfModelSource.open(path);
            try (var files = Files.list(path)) {
                var bins = files.filter(p -> p.toString().endsWith(".bin") && !p.getFileName().toString().startsWith("tok")).toList();
                if (bins.size() == 1) return Llama2cCheckpoint.open(bins.get(0));
            } catch (java.io.IOException e) {
                throw new ModelFormatException(path + ": cannot list folder: " + e.getMessage(), e);
            }
            throw new ModelFormatException(path + ": no config.json (Hugging Face layout) and no single llama2.c .bin checkpoint in this folder");
        }
        if (!Files.isRegularFile(path)) throw new ModelFormatException("no such model file or folder: " + path);
        String n = path.getFileName().toString();
        if (n.endsWith(".gguf")) return dev.bdserve.model.gguf.GgufModelSource.open(path);
        if (n.endsWith(".safetensors") || n.equals("config.json")) return HfModelSource.open(path.getParent() == null ? Path.of(".") : path.getParent());
        return Llama2cCheckpoint.open(path);
    }
}
