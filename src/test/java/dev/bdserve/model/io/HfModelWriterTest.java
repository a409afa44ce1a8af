package dev.bdserve.model.io;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class HfModelWriterTest {
    @TempDir Path dir;

    @Test
    void streamsEachTensorOnceInHfOrder() throws Exception {
        LlamaConfig c = HfModelSourceTest.tiny(false);
        Map<String, Matrix> m = HfModelSourceTest.randomModel(c, DType.F32, 11);
        List<String> requested = new ArrayList<>();
        HfModelWriter.write(dir, c, n -> { requested.add(n); return m.get(n); },
                n -> { requested.add(n); return m.get(n).toFloats(); }, DType.F16);
        assertEquals(List.copyOf(LlamaTensorNames.expectedShapes(c).keySet()), requested);

        ObjectMapper om = new ObjectMapper();
        JsonNode gen = om.readTree(Files.readString(dir.resolve("generation_config.json")));
        assertEquals(1, gen.get("bos_token_id").intValue());
        assertEquals(2, gen.get("eos_token_id").intValue());
        JsonNode cfg = om.readTree(Files.readString(dir.resolve("config.json")));
        assertEquals("float16", cfg.get("torch_dtype").textValue());
        assertEquals("LlamaForCausalLM", cfg.get("architectures").get(0).textValue());
        assertEquals("silu", cfg.get("hidden_act").textValue());
        try (Safetensors st = Safetensors.open(dir.resolve("model.safetensors"))) {
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertEquals(List.copyOf(LlamaTensorNames.expectedShapes(c).keySet()), List.copyOf(st.tensors().keySet()));
        }
    }

    @Test
    void shardIndexHasTotalSize() throws Exception {
        LlamaConfig c = HfModelSourceTest.tiny(true);
        Map<String, Matrix> m = HfModelSourceTest.randomModel(c, DType.BF16, 12);
        HfModelWriter.write(dir, c, m::get, n -> m.get(n).toFloats(), DType.BF16, 2048);
        JsonNode idx = new ObjectMapper().readTree(Files.readString(dir.resolve("model.safetensors.index.json")));
        long total = 0;
        for (var e : LlamaTensorNames.expectedShapes(c).values()) {
            long n = 2;
            for (long d : e) n *= d;
            total += n;
        }
        assertEquals(total, idx.get("metadata").get("total_size").longValue());
        assertEquals(LlamaTensorNames.expectedShapes(c).size(), idx.get("weight_map").size());
        try (HfModelSource src = HfModelSource.open(dir)) {
            assertArrayEquals(m.get(LlamaTensorNames.EMBED).bits(), src.matrix(LlamaTensorNames.EMBED).bits());
        }
        // rewriting as a single file removes the stale index
        HfModelWriter.write(dir, c, m::get, n -> m.get(n).toFloats(), DType.BF16);
        assertFalse(Files.exists(dir.resolve("model.safetensors.index.json")));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.map(f -> f.getFileName().toString()).filter(f -> f.startsWith("model-")).toList());
        }
        try (HfModelSource src = HfModelSource.open(dir)) {
            assertEquals(dir.resolve("model.safetensors"), src.fileOf(LlamaTensorNames.EMBED));
        }
    }
}
