package dev.bdserve.lora;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/** Every malformed-adapter case is rejected with its own precise message. */
class AdapterValidationTest {
    static final LlamaConfig C = ModelShapes.get("tiny");
    @TempDir Path dir;

    /** Writes a valid rank-8 adapter, lets the test break its config or tensors, and returns the loader's message. */
    String reject(Consumer<ObjectNode> cfgEdit, Consumer<Map<String, Matrix>> tensorEdit, int nblocks) {
        SynthAdapter s = new SynthAdapter(8, nblocks, SynthAdapter.allModules(), DType.F32, 16, false, 0.3, 1);
        ObjectNode cfg = s.config("tiny");
        Map<String, Matrix> t = new LinkedHashMap<>(s.tensors(C));
        cfgEdit.accept(cfg);
        tensorEdit.accept(t);
        Path p = dir.resolve("bad");
        PeftAdapterWriter.write(p, cfg, t);
        return assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("bad", p, C, 32)).getMessage();
    }

    String rejectConfig(Consumer<ObjectNode> edit) { return reject(edit, t -> {}, 0); }

    String rejectTensors(Consumer<Map<String, Matrix>> edit) { return reject(c -> {}, edit, 0); }

    static final String Q0A = PeftAdapterWriter.tensorName(0, LoraModule.Q, true);
    static final String Q0B = PeftAdapterWriter.tensorName(0, LoraModule.Q, false);

    @Test void validAdapterLoads() {
        new SynthAdapter(8, 0, SynthAdapter.allModules(), DType.F32, 16, false, 0.3, 1).write(dir.resolve("ok"), C, "tiny");
        LoraAdapter a = PeftAdapterLoader.load("ok", dir.resolve("ok"), C, 32);
        assertEquals(8, a.maxRank());
        assertEquals(64, a.contentHash().length());
    }

    @Test void dora() { assertTrue(rejectConfig(c -> c.put("use_dora", true)).contains("DoRA"), "msg"); }

    @Test void doraMagnitudeTensor() {
        String m = rejectTensors(t -> t.put("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", Matrix.ofF32(1, 64, new float[64])));
        assertTrue(m.contains("lora_magnitude_vector") && m.contains("DoRA"), m);
    }

    @Test void modulesToSave() {
        String m = rejectConfig(c -> c.putArray("modules_to_save").add("lm_head"));
        assertTrue(m.contains("modules_to_save") && m.contains("adapter_config.json"), m);
    }

    @Test void bias() {
        String m = rejectConfig(c -> c.put("bias", "lora_only"));
        assertTrue(m.contains("bias \"lora_only\" is not supported"), m);
    }

    @Test void targetModuleTheModelDoesNotHave() {
        String m = rejectConfig(c -> c.putArray("target_modules").add("q_proj").add("c_attn"));
        assertTrue(m.contains("'c_attn'") && m.contains("does not have"), m);
    }

    @Test void tensorForALayerTheModelDoesNotHave() {
        String m = rejectTensors(t -> {
            t.put("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", t.get(Q0A));
            t.put("base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight", t.get(Q0B));
        });
        assertTrue(m.contains("layer 7") && m.contains("2 layers") && m.contains("adapter_model.safetensors"), m);
    }

    @Test void tensorOfAnUnknownModule() {
        String m = rejectTensors(t -> t.put("base_model.model.model.layers.0.mlp.fc1.lora_A.weight", t.get(Q0A)));
        assertTrue(m.contains("mlp.fc1") && m.contains("not a LoRA factor"), m);
    }

    @Test void shapeMismatchNamesTheTensor() {
        String m = rejectTensors(t -> t.put(Q0A, Matrix.ofF32(8, 65, new float[8 * 65])));
        assertTrue(m.contains(Q0A) && m.contains("[8, 65]") && m.contains("expected [8, 64]") && m.contains("different base model"), m);
    }

    @Test void baseModelMismatchOnOutputWidth() {
        String m = rejectTensors(t -> t.put(Q0B, Matrix.ofF32(128, 8, new float[128 * 8])));
        assertTrue(m.contains(Q0B) && m.contains("expected [64, 8]") && m.contains("trained for tiny"), m);
    }

    @Test void missingB() {
        String m = rejectTensors(t -> t.remove(Q0B));
        assertTrue(m.contains("has lora_A but no lora_B") && m.contains("layers.0.self_attn.q_proj"), m);
    }

    @Test void rankAboveTheMaximum() {
        SynthAdapter s = new SynthAdapter(64, 0, SynthAdapter.allModules(), DType.F32, 64, false, 0.3, 1);
        s.write(dir.resolve("big"), C, "tiny");
        String m = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("big", dir.resolve("big"), C, 32)).getMessage();
        assertTrue(m.contains("rank 64") && m.contains("maximum LoRA rank 32"), m);
    }

    @Test void nanAndInf() {
        String m = rejectTensors(t -> {
            float[] f = t.get(Q0B).toFloats();
            f[5] = Float.NaN;
            t.put(Q0B, Matrix.ofF32(64, 8, f));
        });
        assertTrue(m.contains(Q0B) && m.contains("NaN"), m);
        String m2 = rejectTensors(t -> {
            float[] f = t.get(Q0A).toFloats();
            f[0] = Float.POSITIVE_INFINITY;
            t.put(Q0A, Matrix.ofF32(8, 64, f));
        });
        assertTrue(m2.contains(Q0A) && m2.contains("Inf"), m2);
    }

    @Test void dimensionNotDivisibleByNblocks() {
        // rank 8 with nblocks 3: the rank does not split into blocks
        String m = reject(c -> ((ObjectNode) c.get("use_bdlora")).put("nblocks", 3), t -> {}, 2);
        assertTrue(m.contains("not divisible by nblocks 3"), m);
    }

    @Test void bdPackedShapeWrong() {
        // A BD-B module must store B as [out, r/n]; a dense [out, r] B is rejected.
        String m = reject(c -> {}, t -> t.put(Q0B, Matrix.ofF32(64, 8, new float[64 * 8])), 2);
        assertTrue(m.contains(Q0B) && m.contains("expected [64, 4]") && m.contains("packed"), m);
    }

    @Test void bdModuleOnTheWrongSide() {
        String m = reject(c -> ((ObjectNode) c.get("use_bdlora")).putArray("target_modules_bd_a").add("q_proj"), t -> {}, 2);
        assertTrue(m.contains("target_modules_bd_a") && m.contains("column-parallel"), m);
    }

    @Test void untargetedModule() {
        String m = rejectConfig(c -> c.putArray("target_modules").add("k_proj").add("v_proj").add("o_proj").add("gate_proj").add("up_proj").add("down_proj"));
        assertTrue(m.contains("target_modules") && m.contains("does not select"), m);
    }

    @Test void badJsonAndMissingFiles() throws Exception {
        Path p = dir.resolve("j");
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 4, false, 0.3, 1).write(p, C, "tiny");
        Files.writeString(p.resolve("adapter_config.json"), "{\"r\": 4,");
        String m = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("j", p, C, 32)).getMessage();
        assertTrue(m.contains("adapter_config.json") && m.contains("not valid JSON"), m);
        Files.delete(p.resolve("adapter_model.safetensors"));
        String m2 = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("j", p, C, 32)).getMessage();
        assertTrue(m2.contains("no adapter_model.safetensors"), m2);
        String m3 = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("x", dir.resolve("nope"), C, 32)).getMessage();
        assertTrue(m3.contains("adapter folder not found"), m3);
    }

    @Test void otherPeftTypes() {
        String m = rejectConfig(c -> c.put("peft_type", "IA3"));
        assertTrue(m.contains("peft_type IA3"), m);
    }

    // ---- issue 29: validation after scaling, ranks, bounded patterns

    @Test void hugeAlphaIsRefusedAfterScaling() {
        String m = rejectConfig(c -> c.put("lora_alpha", 1e38));
        assertTrue(m.contains("out of range") && m.contains("lora_alpha"), m);
        String m2 = rejectConfig(c -> c.put("lora_alpha", 1e300));
        assertTrue(m2.contains("overflows fp32") || m2.contains("out of range"), m2);
    }

    @Test void hugeWeightsAreRefusedAfterScaling() {
        String m = rejectTensors(t -> {
            float[] f = t.get(Q0B).toFloats();
            f[3] = 1e30f;
            t.put(Q0B, Matrix.ofF32(64, 8, f));
        });
        assertTrue(m.contains("model.layers.0.self_attn.q_proj") && m.contains("out of range"), m);
    }

    @Test void configRankMustEqualTheTensorRank() {
        String m = rejectConfig(c -> c.put("r", 16));
        assertTrue(m.contains(Q0A) && m.contains("has rank 8") && m.contains("rank 16"), m);
        String m2 = rejectConfig(c -> ((ObjectNode) c.get("rank_pattern")).put("q_proj", 4));
        assertTrue(m2.contains(Q0A) && m2.contains("rank 4") && m2.contains("rank_pattern"), m2);
    }

    @Test void rankZeroIsRefused() {
        String m = rejectConfig(c -> c.put("r", 0));
        assertTrue(m.contains("adapter_config.json") && m.contains("r must be a positive integer, got 0"), m);
        String m2 = rejectConfig(c -> ((ObjectNode) c.get("rank_pattern")).put("q_proj", 0));
        assertTrue(m2.contains("rank_pattern['q_proj'] must be a positive integer"), m2);
        // factors of rank 0 ([0, in] and [out, 0], no data), written by hand: Matrix has no empty shape
        Path p = dir.resolve("r0");
        new SynthAdapter(8, 0, java.util.Set.of(LoraModule.Q), DType.F32, 16, false, 0.3, 1).write(p, C, "tiny");
        String header = "{\"" + Q0A + "\":{\"dtype\":\"F32\",\"shape\":[0,64],\"data_offsets\":[0,0]},\""
                + Q0B + "\":{\"dtype\":\"F32\",\"shape\":[64,0],\"data_offsets\":[0,0]}}";
        byte[] h = header.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(8 + h.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bb.putLong(h.length).put(h);
        try {
            Files.write(p.resolve(PeftAdapterLoader.WEIGHTS), bb.array());
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        String m3 = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("r0", p, C, 32)).getMessage();
        assertTrue(m3.contains(Q0A) && m3.contains("rank 0"), m3);
    }

    @Test void regexPatternsAreBounded() {
        String evil = "(a|aa)+(x+x+)+y";   // backtracks exponentially on a path that does not match
        long t0 = System.nanoTime();
        String m = rejectConfig(c -> c.put("target_modules", ".*" + "(.*.*)+".repeat(3) + "z"));
        assertTrue(m.contains("target_modules regex") && (m.contains("steps") || m.contains("matches no module")), m);
        String m2 = rejectConfig(c -> ((ObjectNode) c.get("rank_pattern")).put("(" + "(.*)*".repeat(4) + ")q", 8));
        assertTrue(m2.contains("rank_pattern") && m2.contains("steps"), m2);
        String m3 = rejectConfig(c -> c.put("target_modules", "q".repeat(5000)));
        assertTrue(m3.contains("adapter_config.json") && m3.contains("at most 1000"), m3);
        assertTrue(evil.length() < 1000);
        assertTrue((System.nanoTime() - t0) / 1e9 < 120, "liveness: bounded matching returned");
    }
}
