package dev.bdserve.model.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face model folder: {@code config.json} plus {@code model.safetensors}, or
 * {@code model.safetensors.index.json} and the shards its "weight_map" names. Every tensor the Llama
 * model needs is checked for presence, dtype (F32/BF16/F16) and shape when the folder is opened.
 * When the embeddings are tied, an {@code lm_head.weight} present in the files is ignored. As in
 * transformers, model.safetensors is preferred when both it and an index exist. Tensors not needed by
 * the model (e.g. rotary inv_freq buffers) are listed in {@link #names()} but not validated.
 */
public final class HfModelSource implements TensorSource {
    public static final String CONFIG = "config.json";
    public static final String SINGLE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private static final ObjectMapper JSON = JsonMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();

    private final Path dir;
    private final LlamaConfig config;
    private final Map<String, Safetensors> byTensor;
    private final List<Safetensors> files;
    private final Set<String> names;

    private HfModelSource(Path dir, LlamaConfig config, Map<String, Safetensors> byTensor, List<Safetensors> files) {
        this.dir = dir;
        this.config = config;
        this.byTensor = byTensor;
        this.files = files;
        this.names = Collections.unmodifiableSet(new LinkedHashSet<>(byTensor.keySet()));
    }

    /** Opens and validates a model folder. */
    public static HfModelSource open(Path dir) {
        if (!Files.isDirectory(dir)) throw new ModelFormatException(dir + ": not a directory");
        LlamaConfig cfg = HfConfigIO.read(dir.resolve(CONFIG));
        List<Safetensors> opened = new ArrayList<>();
        try {
            Map<String, Safetensors> byTensor = new LinkedHashMap<>();
            Path single = dir.resolve(SINGLE), index = dir.resolve(INDEX);
            String where; // what to name when a tensor is missing altogether
            if (Files.exists(single)) {
                Safetensors st = Safetensors.open(single);
                opened.add(st);
                for (String n : st.tensors().keySet()) byTensor.put(n, st);
                where = single.toString();
            } else if (Files.exists(index)) {
                readIndex(dir, index, opened, byTensor);
                where = index.toString();
            } else {
                throw new ModelFormatException(dir + ": no " + SINGLE + " or " + INDEX);
            }
            validate(cfg, byTensor, where);
            return new HfModelSource(dir, cfg, byTensor, List.copyOf(opened));
        } catch (RuntimeException e) {
            for (Safetensors st : opened) st.close();
            throw e;
        }
    }

    private static void readIndex(Path dir, Path index, List<Safetensors> opened, Map<String, Safetensors> byTensor) {
        String f = index.toString();
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(index, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(f + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new ModelFormatException(f + ": cannot read: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new ModelFormatException(f + ": not a JSON object");
        JsonNode wm = root.get("weight_map");
        if (wm == null || wm.isNull()) throw new ModelFormatException(f + ": missing \"weight_map\"");
        if (!wm.isObject()) throw new ModelFormatException(f + ": \"weight_map\" is not an object");
        Map<String, Safetensors> shards = new LinkedHashMap<>();
        Path base = dir.toAbsolutePath().normalize();
        for (Map.Entry<String, JsonNode> e : wm.properties()) {
            String tensor = e.getKey();
            if (!e.getValue().isTextual())
                throw new ModelFormatException(f + ": weight_map entry for tensor '" + tensor + "' is not a file name: " + e.getValue());
            String shardName = e.getValue().textValue();
            Safetensors st = shards.get(shardName);
            if (st == null) {
                Path shard = base.resolve(shardName).normalize();
                if (shardName.isEmpty() || !shard.startsWith(base) || shard.equals(base))
                    throw new ModelFormatException(f + ": shard '" + shardName + "' (tensor '" + tensor + "') is not a file inside " + dir);
                if (!Files.isRegularFile(shard))
                    throw new ModelFormatException(f + ": shard '" + shardName + "' (referenced by tensor '" + tensor + "') does not exist");
                st = Safetensors.open(dir.resolve(shardName));
                opened.add(st);
                shards.put(shardName, st);
            }
            if (!st.tensors().containsKey(tensor))
                throw new ModelFormatException(st.path() + ": tensor '" + tensor + "' is listed in " + INDEX
                        + " weight_map but is not in this shard");
            byTensor.put(tensor, st);
        }
    }

    private static void validate(LlamaConfig cfg, Map<String, Safetensors> byTensor, String where) {
        for (Map.Entry<String, long[]> e : LlamaTensorNames.expectedShapes(cfg).entrySet()) {
            String name = e.getKey();
            Safetensors st = byTensor.get(name);
            if (st == null) {
                String why = name.equals(LlamaTensorNames.LM_HEAD) ? " (config.json has tie_word_embeddings false)" : "";
                throw new ModelFormatException(where + ": missing tensor '" + name + "'" + why);
            }
            Safetensors.TensorInfo ti = st.tensors().get(name);
            if (ti.dtype() == null)
                throw new ModelFormatException(st.path() + ": tensor '" + name + "' has dtype " + ti.dtypeName()
                        + ", expected F32, BF16 or F16");
            if (!Arrays.equals(ti.shape(), e.getValue()))
                throw new ModelFormatException(st.path() + ": tensor '" + name + "' has shape " + Arrays.toString(ti.shape())
                        + ", expected " + Arrays.toString(e.getValue()) + " from config.json");
        }
        if (cfg.tieWordEmbeddings()) byTensor.remove(LlamaTensorNames.LM_HEAD);
    }

    /** The model folder. */
    public Path dir() { return dir; }

    @Override public LlamaConfig config() { return config; }

    @Override public Set<String> names() { return names; }

    private Safetensors file(String name) {
        Safetensors st = byTensor.get(name);
        if (st == null) throw new ModelFormatException(dir + ": no tensor '" + name + "'");
        return st;
    }

    /** The safetensors file holding a tensor. */
    public Path fileOf(String name) { return file(name).path(); }

    /** The stored dtype of a tensor (null if it is not F32/BF16/F16). */
    @Override public DType dtype(String name) { return file(name).info(name).dtype(); }

    @Override public long[] shape(String name) { return file(name).info(name).shape(); }

    @Override public Matrix matrix(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        return file(name).readMatrix(name, rowFrom, rowTo, colFrom, colTo);
    }

    @Override public float[] vector(String name) { return file(name).readFloats(name); }

    @Override public String describe() { return dir.toString(); }

    @Override public void close() { for (Safetensors st : files) st.close(); }
}
