package dev.bdserve.lab.train;

import dev.bdserve.lora.LoraModule;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Optimizer, schedule, data masking, initialisation and checkpoint/resume of the training loop. */
class TrainerTest {
    @TempDir Path tmp;
    private static final LlamaConfig C = TrainTestSupport.tinyConfig();
    private static final LlamaBackprop MODEL = new LlamaBackprop(FrozenLlama.load(new SynthModel(C, DType.F32, 7)));

    private static TrainData.Split data() {
        SplittableRandom r = new SplittableRandom(1);
        List<TrainData.Example> ex = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            int[] t = new int[12];
            t[0] = 1;
            for (int j = 1; j < t.length; j++) t[j] = 3 + (j * 7 + i) % 20 + (r.nextInt(4) == 0 ? 1 : 0);   // learnable patterns
            float[] w = new float[11];
            java.util.Arrays.fill(w, 1);
            ex.add(new TrainData.Example(t, w));
        }
        return new TrainData.Split(ex, ex.subList(0, 3), false);
    }

    private static TrainableAdapter adapter(LoraSpec.Method m, int n) {
        return new TrainableAdapter(new LoraSpec(m, 4, n, 8, false, EnumSet.allOf(LoraModule.class)), C).initPeft(3);
    }

    private static TrainOptions options(int threads) { return new TrainOptions(6, 3, 1e-2, 2, 0.1, 0.01, 1.0, 5, threads, 0, 0); }

    @Test
    void peftInitLeavesTheBaseModelUnchangedAndTrainingLowersTheLoss() {
        TrainableAdapter a = adapter(LoraSpec.Method.BDLORA, 2);
        TrainData.Split d = data();
        try (LoraTrainer t = new LoraTrainer(MODEL, a, d, new TrainOptions(30, 4, 1e-2, 3, 0.1, 0, 1.0, 5, 2, 0, 0))) {
            double base = t.evaluate(d.train());
            LlamaBackprop.Workspace ws = MODEL.newWorkspace();
            double noAdapter = 0, w = 0;
            for (TrainData.Example e : d.train()) { var l = MODEL.run(e.tokens(), e.weights(), null, null, 0, ws); noAdapter += l.sum(); w += l.weight(); }
            assertEquals(noAdapter / w, base, 1e-6, "B = 0: the first loss is the base model's");
            List<float[]> ps = a.parameters();
            for (int i = 0; i < ps.size(); i += 2) {
                assertTrue(java.util.Arrays.stream(toD(ps.get(i))).map(Math::abs).sum() > 0, "A is random");
                assertEquals(0, java.util.Arrays.stream(toD(ps.get(i + 1))).map(Math::abs).sum(), "B is zero");
            }
            for (int i = 0; i < 30; i++) t.trainStep();
            assertTrue(t.evaluate(d.train()) < base - 0.1, "training lowers the loss");
        }
    }

    private static double[] toD(float[] f) { double[] d = new double[f.length]; for (int i = 0; i < f.length; i++) d[i] = f[i]; return d; }

    @Test
    void resumingFromACheckpointContinuesExactly() {
        TrainData.Split d = data();
        TrainableAdapter straight = adapter(LoraSpec.Method.LORA, 1);
        try (LoraTrainer t = new LoraTrainer(MODEL, straight, d, options(2))) { for (int i = 0; i < 6; i++) t.trainStep(); }
        TrainableAdapter first = adapter(LoraSpec.Method.LORA, 1);
        try (LoraTrainer t = new LoraTrainer(MODEL, first, d, options(2))) {
            for (int i = 0; i < 3; i++) t.trainStep();
            t.checkpoint().save(tmp);
        }
        TrainableAdapter resumed = adapter(LoraSpec.Method.LORA, 1).initPeft(99);  // different init: everything must come from the checkpoint
        try (LoraTrainer t = new LoraTrainer(MODEL, resumed, d, options(2))) {
            t.resume(Checkpoint.load(tmp));
            assertEquals(3, t.step());
            while (t.step() < 6) t.trainStep();
        }
        for (int i = 0; i < straight.parameters().size(); i++)
            assertArrayEquals(straight.parameters().get(i), resumed.parameters().get(i), "tensor " + i);
        try (LoraTrainer t = new LoraTrainer(MODEL, adapter(LoraSpec.Method.LORA, 1), d, new TrainOptions(7, 3, 1e-2, 2, 0.1, 0.01, 1.0, 5, 2, 0, 0))) {
            assertThrows(IllegalArgumentException.class, () -> t.resume(Checkpoint.load(tmp)), "a different run is refused");
        }
    }

    @Test
    void scheduleWarmsUpThenDecaysByCosine() {
        LrSchedule s = new LrSchedule(1.0, 10, 110, 0.1);
        assertEquals(0.1, s.at(0), 1e-12);
        assertEquals(1.0, s.at(9), 1e-12);
        assertEquals(1.0, s.at(10), 1e-12);
        assertEquals(0.55, s.at(60), 1e-12);       // half way: min + (peak − min)/2
        assertEquals(0.1, s.at(110), 1e-12);
        for (int i = 11; i < 110; i++) assertTrue(s.at(i) <= s.at(i - 1));
    }

    @Test
    void adamWDecouplesWeightDecayAndClipScalesTheGlobalNorm() {
        float[] p = {1f, -2f}, g = {0f, 0f};
        AdamW opt = new AdamW(new AdamW.Config(0.9, 0.999, 1e-8, 0.1), List.of(p), List.of(g));
        opt.step(0.5);                                       // zero gradient: only the decay acts, w ← w(1 − lr·λ)
        assertEquals(0.95f, p[0], 1e-7);
        assertEquals(-1.9f, p[1], 1e-7);
        g[0] = 3; g[1] = 4;
        float[] q = {0f, 0f};
        AdamW plain = new AdamW(AdamW.Config.defaults(0), List.of(q), List.of(g));
        plain.step(0.1);                                     // first Adam step moves each weight by ≈ lr·sign(g)
        assertEquals(-0.1f, q[0], 1e-6);
        assertEquals(-0.1f, q[1], 1e-6);
        double norm = AdamW.clipGlobalNorm(List.of(g), 1.0);
        assertEquals(5.0, norm, 1e-9);
        assertEquals(0.6f, g[0], 1e-5);
        assertEquals(0.8f, g[1], 1e-5);
    }

    @Test
    void promptCompletionMasksThePromptAndTextIsWindowed() throws Exception {
        Tokenizer tok = dev.bdserve.tokenizer.Tokenizers.load(dev.bdserve.TestModels.stories260K());
        TrainData.Example e = TrainData.promptCompletion(tok, new TrainData.PromptCompletion("Hello there.", " BYE NOW."), 64);
        int[] p = tok.encode("Hello there.", true);
        for (int t = 0; t < e.weights().length; t++) assertEquals(t >= p.length - 1 ? 1f : 0f, e.weights()[t], "position " + t);
        Path f = tmp.resolve("t.txt");
        Files.writeString(f, "one two three four five six\n\nseven eight nine ten\n\n".repeat(20));
        TrainData.Split s = TrainData.load(f, tok, 16, 0.1);
        assertFalse(s.eval().isEmpty());
        for (TrainData.Example x : s.train()) assertTrue(x.tokens().length <= 17);
        Path j = tmp.resolve("d.jsonl");
        Files.writeString(j, "{\"prompt\": \"a b\", \"completion\": \" C D\"}\n".repeat(20));
        assertTrue(TrainData.load(j, tok, 32, 0.1).promptCompletion());
    }
}
