package dev.bdserve.lab.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.TestModels;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraModule;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.Step;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.io.Safetensors;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The exported PEFT folder: conforms to spec §3 (names, shapes, dtypes, config keys), and the inference
 * engine (PeftAdapterLoader + LlamaModel) computes the same loss as the trainer for the trained adapter.
 */
class ExportTest {
    @TempDir Path tmp;

    /** A few steps of training on random token sequences, so that B is non-zero. */
    private static TrainableAdapter trained(TensorSource src, LoraSpec spec, List<TrainData.Example> data) {
        TrainableAdapter a = new TrainableAdapter(spec, src.config()).initPeft(5);
        try (LoraTrainer t = new LoraTrainer(new LlamaBackprop(FrozenLlama.load(src)), a, new TrainData.Split(data, data, false),
                new TrainOptions(4, 2, 5e-3, 1, 0.1, 0.01, 1.0, 3, 2, 0, 0))) {
            for (int i = 0; i < 4; i++) t.trainStep();
        }
        return a;
    }

    private static List<TrainData.Example> randomData(int vocab, int n, int len, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<TrainData.Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] t = new int[len];
            t[0] = 1;
            for (int j = 1; j < len; j++) t[j] = 3 + r.nextInt(vocab - 3);
            float[] w = new float[len - 1];
            for (int j = 0; j < w.length; j++) w[j] = j < 3 ? 0 : 1;   // a masked prompt
            out.add(new TrainData.Example(t, w));
        }
        return out;
    }

    /** Σ w·CE / Σ w through the inference engine's forward with the loaded adapter (fp64 softmax over its fp32 logits). */
    private static double engineLoss(TensorSource src, LoraAdapter adapter, List<TrainData.Example> data) {
        LlamaModel m = LlamaModel.load(src, new SingleRank(), Parallel.serial());
        int V = src.config().vocabSize();
        double sum = 0, wsum = 0;
        for (TrainData.Example e : data) {
            int T = e.tokens().length - 1;
            float[] logits = new float[T * V];
            var per = new LoraAdapter[T];
            java.util.Arrays.fill(per, adapter);
            var updates = dev.bdserve.lora.RankAdapters.of(m).forStep(per, dev.bdserve.lora.LoraSharding.AUTO);
            m.forward(Step.ofSequence(m.newCache(T), java.util.Arrays.copyOf(e.tokens(), T), 0, true, updates), m.newWorkspace(), logits);
            for (int t = 0; t < T; t++) {
                if (e.weights()[t] == 0) continue;
                double max = Double.NEGATIVE_INFINITY, z = 0;
                for (int v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]);
                for (int v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - max);
                sum += e.weights()[t] * (max + Math.log(z) - logits[t * V + e.tokens()[t + 1]]);
                wsum += e.weights()[t];
            }
        }
        return sum / wsum;
    }

    private void checkEngineLoss(TensorSource src, LoraSpec spec, String name) {
        List<TrainData.Example> data = randomData(src.config().vocabSize(), 4, 24, 9);
        TrainableAdapter a = trained(src, spec, data);
        double trainerLoss;
        try (LoraTrainer t = new LoraTrainer(new LlamaBackprop(FrozenLlama.load(src)), a, new TrainData.Split(data, data, false),
                new TrainOptions(1, 1, 1e-3, 0, 0, 0, 0, 0, 1, 0, 0))) {
            trainerLoss = t.evaluate(data);
        }
        Path dir = tmp.resolve(name);
        a.writePeft(dir, "test-base");
        LoraAdapter loaded = PeftAdapterLoader.load(name, dir, src.config(), 256);
        assertEquals(spec.method() == LoraSpec.Method.BDLORA, loaded.isBlockDiagonal());
        double engine = engineLoss(src, loaded, data), base = engineLoss(src, null, data);
        assertEquals(trainerLoss, engine, 1e-4 * Math.abs(engine), name + ": trainer vs engine loss");
        assertTrue(Math.abs(engine - base) > 1e-3, name + ": the adapter changes the loss (B is non-zero)");
    }

    @Test
    void engineComputesTheTrainersLossOnATinyModel() {
        SynthModel src = new SynthModel(TrainTestSupport.tinyConfig(), DType.F32, 3);
        checkEngineLoss(src, new LoraSpec(LoraSpec.Method.LORA, 4, 1, 8, false, EnumSet.allOf(LoraModule.class)), "tiny-lora");
        checkEngineLoss(src, new LoraSpec(LoraSpec.Method.BDLORA, 4, 2, 4, true, EnumSet.allOf(LoraModule.class)), "tiny-bd2-rs");
    }

    @Test
    void engineComputesTheTrainersLossOnStories260K() {
        try (TensorSource src = ModelFiles.open(TestModels.stories260K())) {
            checkEngineLoss(src, new LoraSpec(LoraSpec.Method.LORA, 8, 1, 16, false, EnumSet.allOf(LoraModule.class)), "s-lora8");
            checkEngineLoss(src, new LoraSpec(LoraSpec.Method.BDLORA, 8, 4, 16, false, EnumSet.allOf(LoraModule.class)), "s-bd4");
            checkEngineLoss(src, new LoraSpec(LoraSpec.Method.BDLORA, 4, 2, 8, false, EnumSet.of(LoraModule.Q, LoraModule.V, LoraModule.DOWN)), "s-bd2-qvd");
        }
    }

    private static final Pattern NAME = Pattern.compile(
            "base_model\\.model\\.model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(q|k|v|o|gate|up|down)_proj\\.lora_([AB])\\.weight");

    /** Spec §3: tensor names, dtypes, dense and packed shapes, and the config keys (use_bdlora for BD adapters). */
    @Test
    void exportConformsToSpecSection3() throws Exception {
        LlamaConfig c = TrainTestSupport.tinyConfig();
        for (LoraSpec spec : List.of(new LoraSpec(LoraSpec.Method.LORA, 4, 1, 8, false, EnumSet.allOf(LoraModule.class)),
                new LoraSpec(LoraSpec.Method.BDLORA, 4, 2, 8, true, EnumSet.allOf(LoraModule.class)))) {
            boolean bd = spec.method() == LoraSpec.Method.BDLORA;
            int n = spec.nblocks(), r = spec.rank();
            Path dir = tmp.resolve(bd ? "bd" : "dense");
            new TrainableAdapter(spec, c).initPeft(1).writePeft(dir, "my-base");
            JsonNode j = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            assertEquals("LORA", j.get("peft_type").asText());
            assertEquals(r, j.get("r").asInt());
            assertEquals(spec.alpha(), j.get("lora_alpha").asDouble());
            assertEquals(spec.rslora(), j.get("use_rslora").asBoolean());
            assertEquals("none", j.get("bias").asText());
            assertFalse(j.get("use_dora").asBoolean());
            assertTrue(j.get("modules_to_save").isNull());
            assertFalse(j.get("fan_in_fan_out").asBoolean());
            assertEquals("my-base", j.get("base_model_name_or_path").asText());
            Set<String> targets = new java.util.TreeSet<>();
            j.get("target_modules").forEach(x -> targets.add(x.asText()));
            assertEquals(Set.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), targets);
            if (bd) {
                JsonNode u = j.get("use_bdlora");
                assertEquals(n, u.get("nblocks").asInt());
                Set<String> ba = new java.util.TreeSet<>(), bb = new java.util.TreeSet<>();
                u.get("target_modules_bd_a").forEach(x -> ba.add(x.asText()));
                u.get("target_modules_bd_b").forEach(x -> bb.add(x.asText()));
                assertEquals(Set.of("o_proj", "down_proj"), ba);
                assertEquals(Set.of("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"), bb);
            } else assertNull(j.get("use_bdlora"));
            try (Safetensors st = Safetensors.open(dir.resolve("adapter_model.safetensors"))) {
                Map<String, Safetensors.TensorInfo> ts = st.tensors();
                assertEquals(c.numLayers() * 7 * 2, ts.size());
                for (var e : ts.entrySet()) {
                    Matcher mm = NAME.matcher(e.getKey());
                    assertTrue(mm.matches(), "PEFT name: " + e.getKey());
                    assertEquals("F32", e.getValue().dtypeName());
                    LoraModule m = LoraModule.byName(mm.group(3));
                    boolean isA = mm.group(4).equals("A");
                    long[] want;
                    if (isA) want = new long[]{r, bd && !m.columnParallel() ? m.in(c) / n : m.in(c)};   // BD-A: [r, in/n]
                    else want = new long[]{m.out(c), bd && m.columnParallel() ? r / n : r};           // BD-B: [out, r/n]
                    assertArrayEquals(want, e.getValue().shape(), e.getKey());
                }
            }
        }
    }
}
