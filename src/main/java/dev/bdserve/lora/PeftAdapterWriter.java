package dev.bdserve.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.io.SafetensorsWriter;
import dev.bdserve.tensor.Matrix;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Writes a PEFT adapter folder: adapter_config.json and adapter_model.safetensors (spec §3). */
public final class PeftAdapterWriter {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private PeftAdapterWriter() {}

    /** PEFT's tensor name of a module factor: base_model.model.model.layers.{i}...{proj}.lora_{A|B}.weight. */
    public static String tensorName(int layer, LoraModule m, boolean a) {
        return "base_model.model." + m.path(layer) + ".lora_" + (a ? "A" : "B") + ".weight";
    }

    /** A PEFT LoraConfig as JSON with the keys PEFT writes and reads. */
    public static ObjectNode baseConfig(int r, double alpha, Iterable<String> targets, boolean rslora, String baseModel) {
        ObjectNode c = JSON.createObjectNode();
        c.put("peft_type", "LORA");
        c.put("task_type", "CAUSAL_LM");
        c.put("base_model_name_or_path", baseModel);
        c.put("r", r);
        c.put("lora_alpha", alpha);
        c.put("lora_dropout", 0.0);
        var t = c.putArray("target_modules");
        targets.forEach(t::add);
        c.put("use_rslora", rslora);
        c.put("bias", "none");
        c.put("use_dora", false);
        c.putNull("modules_to_save");
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.putObject("rank_pattern");
        c.putObject("alpha_pattern");
        return c;
    }

    /** Adds use_bdlora: block-diagonal A in row-parallel modules, B in column-parallel ones. */
    public static void addBdConfig(ObjectNode c, int nblocks) {
        addBdConfig(c, nblocks, List.of("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"));
    }

    /** The same with B block-diagonal in the column-parallel modules {@code bdB} only. */
    public static void addBdConfig(ObjectNode c, int nblocks, List<String> bdB) {
        ObjectNode bd = c.putObject("use_bdlora");
        bd.putArray("target_modules_bd_a").add("o_proj").add("down_proj");
        var b = bd.putArray("target_modules_bd_b");
        bdB.forEach(b::add);
        bd.put("nblocks", nblocks);
    }

    /** Writes the folder; tensors are in PEFT naming and layout (B unscaled). */
    public static void write(Path dir, ObjectNode config, Map<String, Matrix> tensors) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve(PeftAdapterLoader.CONFIG), JSON.writeValueAsString(config));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write adapter to " + dir + ": " + e.getMessage(), e);
        }
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        tensors.forEach(w::add);
        w.write(dir.resolve(PeftAdapterLoader.WEIGHTS));
    }
}
