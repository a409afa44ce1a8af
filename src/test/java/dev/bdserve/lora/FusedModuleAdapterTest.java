package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** PEFT adapters on Phi-3's fused qkv_proj / gate_up_proj: split into their parts, and what is refused. */
class FusedModuleAdapterTest {
    @TempDir Path dir;
    static final LlamaConfig PHI3 = ModelShapes.get("tiny-phi3"), LLAMA = ModelShapes.get("tiny");

    @Test
    void aFusedModuleBecomesOneDenseLoraPerPartSharingA() {
        new SynthAdapter(8, 0, SynthAdapter.allModules(), DType.F32, 16, false, 0.3, 1).write(dir.resolve("a"), PHI3, "phi3");
        LoraAdapter a = PeftAdapterLoader.load("a", dir.resolve("a"), PHI3, 64);
        LoraWeights q = a.get(0, LoraModule.Q), k = a.get(0, LoraModule.K), v = a.get(0, LoraModule.V);
        assertSame(q.a(), k.a());
        assertSame(q.a(), v.a());
        assertEquals(PHI3.qDim(), q.out());
        assertEquals(PHI3.kvDim(), v.out());
        assertEquals(2.0, q.scaling());                                   // alpha 16 / r 8
        assertEquals(PHI3.intermediateSize(), a.get(1, LoraModule.UP).out());
        assertSame(a.get(1, LoraModule.GATE).a(), a.get(1, LoraModule.UP).a());
    }

    @Test
    void modulesTheModelDoesNotHaveAreRefusedByName() throws Exception {
        // a Llama-layout adapter (q_proj ...) on Phi-3, and a Phi-3 one (qkv_proj ...) on Llama
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 4, false, 0.3, 1).write(dir.resolve("llama"), LLAMA, "llama");
        var e = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("x", dir.resolve("llama"), PHI3, 64));
        assertTrue(e.getMessage().contains("target_modules names 'q_proj', which the phi3 model does not have (its modules: qkv_proj, o_proj, gate_up_proj, down_proj)"),
                e.getMessage());
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 4, false, 0.3, 1).write(dir.resolve("phi3"), PHI3, "phi3");
        e = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("x", dir.resolve("phi3"), LLAMA, 64));
        assertTrue(e.getMessage().contains("target_modules names 'qkv_proj', which the llama model does not have"), e.getMessage());
    }

    @Test
    void bdLoraOnAFusedModuleIsRefused() throws Exception {
        Path d = dir.resolve("bd");
        new SynthAdapter(8, 2, SynthAdapter.allModules(), DType.F32, 8, false, 0.3, 1).write(d, PHI3, "phi3");
        Path cfg = d.resolve(PeftAdapterLoader.CONFIG);
        String json = Files.readString(cfg).replaceAll("\"target_modules_bd_b\"\\s*:\\s*\\[\\s*]", "\"target_modules_bd_b\": [\"qkv_proj\"]");
        assertTrue(json.contains("[\"qkv_proj\"]"), json);
        Files.writeString(cfg, json);
        var e = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("bd", d, PHI3, 64));
        assertTrue(e.getMessage().contains("use_bdlora.target_modules_bd_b names the fused module qkv_proj")
                && e.getMessage().contains("use a dense LoRA on qkv_proj"), e.getMessage());
    }
}
