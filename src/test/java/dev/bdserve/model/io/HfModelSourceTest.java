package dev.bdserve.model.io;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class HfModelSourceTest {
    @TempDir Path dir;

    static LlamaConfig tiny(boolean tied) {
        return new LlamaConfig(32, 16, 24, 2, 4, 2, 4, 64, 1e-5f, 10000.0, null, tied, 1, List.of(2), "float32");
    }

    /** Random tensors for every name of the config, in the given dtype. */
    static Map<String, Matrix> randomModel(LlamaConfig c, DType dt, long seed) {
        Random r = new Random(seed);
        Map<String, Matrix> m = new HashMap<>();
        for (var e : LlamaTensorNames.expectedShapes(c).entrySet()) {
            long[] s = e.getValue();
            int rows = s.length == 1 ? 1 : (int) s[0], cols = (int) s[s.length - 1];
            float[] f = new float[rows * cols];
            for (int i = 0; i < f.length; i++) f[i] = (float) r.nextGaussian();
            m.put(e.getKey(), Matrix.fromFloats(dt, rows, cols, f));
        }
        return m;
    }

    static void writeModel(Path out, LlamaConfig c, Map<String, Matrix> m, DType dt, long maxShard) {
        HfModelWriter.write(out, c, m::get, n -> m.get(n).toFloats(), dt, maxShard);
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void roundTripSingleFile(DType dt) {
        LlamaConfig c = tiny(false);
        Map<String, Matrix> m = randomModel(c, dt, 3);
        Path out = dir.resolve("m");
        writeModel(out, c, m, dt, Long.MAX_VALUE);
        assertTrue(Files.exists(out.resolve("model.safetensors")));
        assertTrue(Files.exists(out.resolve("generation_config.json")));
        assertFalse(Files.exists(out.resolve("model.safetensors.index.json")));
        try (HfModelSource src = HfModelSource.open(out)) {
            assertEquals(HfModelWriter.torchDtype(dt), src.config().torchDtype());
            assertEquals(m.keySet(), src.names());
            for (var e : m.entrySet()) {
                String n = e.getKey();
                assertEquals(dt, src.dtype(n));
                if (src.shape(n).length == 1) assertArrayEquals(e.getValue().toFloats(), src.vector(n), n);
                else {
                    Matrix back = src.matrix(n);
                    if (dt == DType.F32) assertArrayEquals(e.getValue().f32(), back.f32(), n);
                    else assertArrayEquals(e.getValue().bits(), back.bits(), n);
                }
            }
            // a tensor-parallel shard
            Matrix q = src.matrix(LlamaTensorNames.q(1), 4, 8, 0, 16);
            assertArrayEquals(m.get(LlamaTensorNames.q(1)).sliceRows(4, 8).toFloats(), q.toFloats());
        }
    }

    @Test
    void conversionToBf16() {
        LlamaConfig c = tiny(true);
        Map<String, Matrix> m = randomModel(c, DType.F32, 4);
        Path out = dir.resolve("m");
        writeModel(out, c, m, DType.BF16, Long.MAX_VALUE);
        try (HfModelSource src = HfModelSource.open(out)) {
            Matrix back = src.matrix(LlamaTensorNames.EMBED);
            assertEquals(DType.BF16, back.dtype());
            assertArrayEquals(Matrix.fromFloats(DType.BF16, 32, 16, m.get(LlamaTensorNames.EMBED).f32()).bits(), back.bits());
        }
    }

    @Test
    void shardedRoundTrip() throws IOException {
        LlamaConfig c = tiny(false);
        Map<String, Matrix> m = randomModel(c, DType.F32, 5);
        Path out = dir.resolve("m");
        writeModel(out, c, m, DType.F32, 4000);
        assertFalse(Files.exists(out.resolve("model.safetensors")));
        assertTrue(Files.exists(out.resolve("model.safetensors.index.json")));
        try (Stream<Path> files = Files.list(out)) {
            List<String> shards = files.map(p -> p.getFileName().toString()).filter(s -> s.startsWith("model-")).sorted().toList();
            assertTrue(shards.size() > 2, shards.toString());
            assertEquals(String.format("model-00001-of-%05d.safetensors", shards.size()), shards.getFirst());
        }
        try (HfModelSource src = HfModelSource.open(out)) {
            assertEquals(c, src.config());
            for (var e : m.entrySet())
                assertArrayEquals(e.getValue().toFloats(), src.shape(e.getKey()).length == 1 ? src.vector(e.getKey())
                        : src.matrix(e.getKey()).toFloats(), e.getKey());
        }
    }

    @Test
    void tiedIgnoresLmHead() {
        LlamaConfig c = tiny(true);
        Map<String, Matrix> m = randomModel(c, DType.F32, 6);
        Path out = dir.resolve("m");
        writeModel(out, c, m, DType.F32, Long.MAX_VALUE);
        // rewrite the weights with an extra lm_head
        SafetensorsWriter w = new SafetensorsWriter();
        for (String n : LlamaTensorNames.expectedShapes(c).keySet()) add(w, n, m.get(n));
        w.add(LlamaTensorNames.LM_HEAD, m.get(LlamaTensorNames.EMBED));
        w.write(out.resolve("model.safetensors"));
        try (HfModelSource src = HfModelSource.open(out)) {
            assertFalse(src.names().contains(LlamaTensorNames.LM_HEAD));
            assertThrows(ModelFormatException.class, () -> src.matrix(LlamaTensorNames.LM_HEAD));
        }
    }

    // ---------------------------------------------------------------- errors

    /** Writes a single-file model with the given tensors (overrides replace or, if null, remove). */
    Path model(LlamaConfig c, Map<String, Matrix> overrides) {
        Map<String, Matrix> m = randomModel(c, DType.F32, 9);
        Path out = dir.resolve("bad");
        HfConfigIO.write(c, dirs(out).resolve("config.json"));
        SafetensorsWriter w = new SafetensorsWriter();
        for (String n : LlamaTensorNames.expectedShapes(c).keySet()) {
            if (overrides.containsKey(n)) {
                if (overrides.get(n) != null) add(w, n, overrides.get(n));
            } else add(w, n, m.get(n));
        }
        w.write(out.resolve("model.safetensors"));
        return out;
    }

    /** Norm weights are 1-D in HF files. */
    static void add(SafetensorsWriter w, String n, Matrix m) {
        if (n.endsWith("norm.weight") && m.rows() == 1) w.add(n, m.dtype(), m.toFloats());
        else w.add(n, m);
    }

    static Path dirs(Path p) {
        try {
            return Files.createDirectories(p);
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    String fails(Path p) {
        return assertThrows(ModelFormatException.class, () -> HfModelSource.open(p).close()).getMessage();
    }

    @Test
    void missingTensor() {
        Map<String, Matrix> o = new HashMap<>();
        o.put(LlamaTensorNames.up(1), null);
        Path p = model(tiny(true), o);
        assertEquals(p.resolve("model.safetensors") + ": missing tensor 'model.layers.1.mlp.up_proj.weight'", fails(p));
    }

    @Test
    void untiedWithoutLmHead() {
        Map<String, Matrix> o = new HashMap<>();
        o.put(LlamaTensorNames.LM_HEAD, null);
        Path p = model(tiny(false), o);
        assertEquals(p.resolve("model.safetensors") + ": missing tensor 'lm_head.weight' (config.json has tie_word_embeddings false)", fails(p));
    }

    @Test
    void wrongShape() {
        Path p = model(tiny(true), Map.of(LlamaTensorNames.k(0), Matrix.ofF32(16, 16, new float[256])));
        assertEquals(p.resolve("model.safetensors") + ": tensor 'model.layers.0.self_attn.k_proj.weight' has shape [16, 16],"
                + " expected [8, 16] from config.json", fails(p));
    }

    @Test
    void transposedDown() {
        Path p = model(tiny(true), Map.of(LlamaTensorNames.down(1), Matrix.ofF32(24, 16, new float[24 * 16])));
        assertTrue(fails(p).contains("tensor 'model.layers.1.mlp.down_proj.weight' has shape [24, 16], expected [16, 24]"));
    }

    @Test
    void unsupportedDtype() {
        LlamaConfig c = tiny(true);
        Path out = dirs(dir.resolve("i"));
        HfConfigIO.write(c, out.resolve("config.json"));
        SafetensorsWriter w = new SafetensorsWriter();
        Map<String, Matrix> m = randomModel(c, DType.F32, 1);
        for (String n : LlamaTensorNames.expectedShapes(c).keySet()) {
            if (n.equals(LlamaTensorNames.FINAL_NORM)) w.addRaw(n, "I32", new long[]{16}, new byte[64]);
            else add(w, n, m.get(n));
        }
        w.write(out.resolve("model.safetensors"));
        assertTrue(fails(out).contains(": tensor 'model.norm.weight' has dtype I32, expected F32, BF16 or F16"));
    }

    @Test
    void noWeights() throws IOException {
        Path out = dirs(dir.resolve("e"));
        HfConfigIO.write(tiny(true), out.resolve("config.json"));
        assertEquals(out + ": no model.safetensors or model.safetensors.index.json", fails(out));
        Files.delete(out.resolve("config.json"));
        assertEquals(out.resolve("config.json") + ": file not found", fails(out));
    }

    Path sharded() {
        LlamaConfig c = tiny(true);
        Path out = dir.resolve("s");
        writeModel(out, c, randomModel(c, DType.F32, 2), DType.F32, 3000);
        return out;
    }

    @Test
    void indexMissingShard() throws IOException {
        Path out = sharded();
        Path last;
        try (Stream<Path> f = Files.list(out)) {
            last = f.filter(p -> p.getFileName().toString().startsWith("model-")).sorted().toList().getLast();
        }
        Files.delete(last);
        String msg = fails(out);
        assertTrue(msg.startsWith(out.resolve("model.safetensors.index.json") + ": shard '" + last.getFileName()
                + "' (referenced by tensor '"), msg);
        assertTrue(msg.endsWith("') does not exist"), msg);
    }

    @Test
    void indexTensorNotInShard() throws IOException {
        Path out = sharded();
        Path idx = out.resolve("model.safetensors.index.json");
        String text = Files.readString(idx);
        String first = "\"model.embed_tokens.weight\" : \"model-00001-of-";
        assertTrue(text.contains(first), text);
        Files.writeString(idx, text.replace(first, "\"model.embed_tokens.weight\" : \"model-00002-of-"));
        String msg = fails(out);
        assertTrue(msg.endsWith(": tensor 'model.embed_tokens.weight' is listed in model.safetensors.index.json weight_map"
                + " but is not in this shard"), msg);
        assertTrue(msg.contains("model-00002-of-"), msg);
    }

    @Test
    void indexEscapingDirectory() throws IOException {
        Path out = sharded();
        Path idx = out.resolve("model.safetensors.index.json");
        Files.writeString(idx, "{\"weight_map\": {\"model.norm.weight\": \"../x.safetensors\"}}");
        assertTrue(fails(out).contains("shard '../x.safetensors' (tensor 'model.norm.weight') is not a file inside"));
        Files.writeString(idx, "{\"metadata\": {}}");
        assertEquals(idx + ": missing \"weight_map\"", fails(out));
        Files.writeString(idx, "{\"weight_map\": {\"model.norm.weight\": 3}}");
        assertEquals(idx + ": weight_map entry for tensor 'model.norm.weight' is not a file name: 3", fails(out));
    }

    @Test
    void indexMissingRequiredTensor() throws IOException {
        Path out = sharded();
        Path idx = out.resolve("model.safetensors.index.json");
        String text = Files.readString(idx);
        Files.writeString(idx, text.replaceAll(",\\s*\"model\\.norm\\.weight\" : \"[^\"]*\"", ""));
        String msg = fails(out);
        assertEquals(idx + ": missing tensor 'model.norm.weight'", msg);
    }

    @Test
    void badConfigNamesFile() throws IOException {
        Path out = sharded();
        Files.writeString(out.resolve("config.json"), "{\"model_type\": \"llama\"}");
        assertEquals(out.resolve("config.json") + ": missing required key \"vocab_size\"", fails(out));
    }
}
