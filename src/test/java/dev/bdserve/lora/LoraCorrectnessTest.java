package dev.bdserve.lora;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.KvCache;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.Step;
import dev.bdserve.model.SynthModel;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.SpinPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** LoRA and BD-LoRA logits against the fp64 reference with merged weights, and batches against single sequences. */
class LoraCorrectnessTest {
    static Parallel pool;
    @TempDir Path dir;

    @BeforeAll static void start() { pool = new SpinPool(2); }
    @AfterAll static void stop() { pool.close(); }

    static int[] tokens(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(vocab);
        return t;
    }

    /** Every one of n tokens on adapter a (none when null), laid out for m's rank as AUTO resolves it. */
    static dev.bdserve.model.AdapterUpdates updates(LlamaModel m, LoraAdapter a, int n) {
        LoraAdapter[] per = new LoraAdapter[n];
        java.util.Arrays.fill(per, a);
        return RankAdapters.of(m).forStep(per, LoraSharding.AUTO);
    }

    static float[] run(LlamaModel m, int[] toks, LoraAdapter a) {
        float[] out = new float[toks.length * m.config().vocabSize()];
        m.forward(Step.ofSequence(m.newCache(4), toks, 0, true, updates(m, a, toks.length)), m.newWorkspace(), out);
        return out;
    }

    static void assertMatchesReference(SynthModel base, LlamaModel m, LoraAdapter a, String label) {
        int vocab = base.config().vocabSize();
        int[] toks = tokens(19, vocab, 42);
        double[][] ref = LoraTestSupport.merged(base, a).logits(toks);
        double[][] noLora = LoraTestSupport.merged(base, null).logits(toks);
        float[] got = run(m, toks, a);
        double tol = 1e-4 * LoraTestSupport.maxAbs(ref), effect = 0;
        for (int t = 0; t < toks.length; t++)
            for (int v = 0; v < vocab; v++) {
                assertEquals(ref[t][v], got[t * vocab + v], tol, label + ": position " + t + " token " + v);
                effect = Math.max(effect, Math.abs(ref[t][v] - noLora[t][v]));
            }
        assertTrue(effect > 100 * tol, label + ": the adapter must visibly change the logits (max change " + effect + ")");
    }

    @ParameterizedTest(name = "{0} r={1} nblocks={2} {3} rslora={4} targets={5}")
    @CsvSource({
            "tiny, 1, 0, F32, false, all",
            "tiny, 8, 0, BF16, false, all",
            "tiny, 64, 0, F32, true, all",
            "tiny, 16, 0, BF16, true, 'q,v'",
            "tiny-gqa, 12, 0, F32, false, 'o,down'",
            "tiny, 8, 2, F32, false, all",
            "tiny, 16, 4, BF16, false, all",
            "tiny, 64, 4, F32, true, 'q,k,o,up'",
            "tiny-gqa, 6, 2, BF16, false, all",
            // the other families: their departures under the same PEFT modules
            "tiny-qwen2, 8, 0, F32, false, all",
            "tiny-qwen3, 8, 2, F32, false, all",
            "tiny-mistral, 8, 0, BF16, false, all",
            "tiny-gemma2, 8, 0, F32, false, all",
            "tiny-gemma2, 16, 4, F32, false, all",
            "tiny-gemma3, 8, 2, BF16, false, all",
            // Phi-3: one A and B per fused qkv_proj / gate_up_proj, split into the parts' rows (BD-LoRA on o and down)
            "tiny-phi3, 8, 0, F32, false, all",
            "tiny-phi3, 8, 2, F32, false, all",
            "tiny-phi3, 4, 0, BF16, false, 'q,o'",
    })
    void adapterLogitsMatchMergedReference(String shape, int rank, int nblocks, DType dtype, boolean rslora, String targets) {
        SynthModel base = new SynthModel(ModelShapes.get(shape), DType.F32, 5);
        LlamaModel m = LlamaModel.load(base, new SingleRank(), pool);
        new SynthAdapter(rank, nblocks, SynthAdapter.parseTargets(targets), dtype, rank * 1.5, rslora, 0.3, 9)
                .write(dir.resolve("a"), base.config(), shape);
        LoraAdapter a = PeftAdapterLoader.load("a", dir.resolve("a"), base.config(), 64);
        assertEquals(nblocks > 1 && (targets.equals("all") || targets.contains("o") || targets.contains("down") || !shape.contains("phi3")), a.isBlockDiagonal());
        assertMatchesReference(base, m, a, shape + " r" + rank);
    }

    @Test
    void rankAndAlphaPatternsAndLayerSubsets() {
        SynthModel base = new SynthModel(ModelShapes.get("tiny-gqa"), DType.F32, 6);
        LlamaConfig c = base.config();
        LlamaModel m = LlamaModel.load(base, new SingleRank(), pool);
        SynthAdapter s = new SynthAdapter(8, 0, SynthAdapter.allModules(), DType.F32, 16, false, 0.3, 3);
        Map<String, Matrix> t = new java.util.LinkedHashMap<>(s.tensors(c));
        // q_proj gets rank 4 through rank_pattern (shapes say so too); v_proj alpha 3 through alpha_pattern;
        // layer 1 has no adapter at all.
        SplittableRandom r = new SplittableRandom(1);
        for (int l = 0; l < c.numLayers(); l++) {
            t.put(PeftAdapterWriter.tensorName(l, LoraModule.Q, true), rand(r, 4, c.hiddenSize(), 0.1));
            t.put(PeftAdapterWriter.tensorName(l, LoraModule.Q, false), rand(r, c.qDim(), 4, 0.3));
        }
        for (LoraModule mod : LoraModule.values()) {
            t.remove(PeftAdapterWriter.tensorName(1, mod, true));
            t.remove(PeftAdapterWriter.tensorName(1, mod, false));
        }
        ObjectNode cfg = s.config("tiny-gqa");
        ((ObjectNode) cfg.get("rank_pattern")).put("q_proj", 4);
        ((ObjectNode) cfg.get("alpha_pattern")).put("v_proj", 3.0);
        cfg.putArray("layers_to_transform").add(0).add(2);
        PeftAdapterWriter.write(dir.resolve("p"), cfg, t);
        LoraAdapter a = PeftAdapterLoader.load("p", dir.resolve("p"), c, 64);
        assertEquals(4, a.get(0, LoraModule.Q).rank());
        assertEquals(16.0 / 4, a.get(0, LoraModule.Q).scaling(), 1e-12);
        assertEquals(3.0 / 8, a.get(2, LoraModule.V).scaling(), 1e-12);
        assertNull(a.get(1, LoraModule.K));
        assertMatchesReference(base, m, a, "patterns");
    }

    static Matrix rand(SplittableRandom r, int rows, int cols, double scale) {
        float[] f = new float[rows * cols];
        for (int i = 0; i < f.length; i++) f[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        return Matrix.ofF32(rows, cols, f);
    }

    @Test
    void bdAdapterAndItsDensifiedTwinGiveTheSameLogits() {
        SynthModel base = new SynthModel(ModelShapes.get("tiny"), DType.BF16, 8);
        LlamaModel m = LlamaModel.load(base, new SingleRank(), pool);
        new SynthAdapter(16, 4, SynthAdapter.allModules(), DType.BF16, 32, false, 0.3, 4).write(dir.resolve("bd"), base.config(), "tiny");
        AdapterTools.densify(dir.resolve("bd"), dir.resolve("dense"));
        LoraAdapter bd = PeftAdapterLoader.load("bd", dir.resolve("bd"), base.config(), 64);
        LoraAdapter dense = PeftAdapterLoader.load("dense", dir.resolve("dense"), base.config(), 64);
        assertTrue(bd.isBlockDiagonal());
        assertFalse(dense.isBlockDiagonal());
        assertTrue(dense.parameters() > bd.parameters());
        int[] toks = tokens(23, base.config().vocabSize(), 2);
        float[] a = run(m, toks, bd), b = run(m, toks, dense);
        float max = 0;
        for (float v : a) max = Math.max(max, Math.abs(v));
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-5 * max, "logit " + i);
    }

    @Test
    void heterogeneousBatchEqualsEachSequenceAlone() {
        SynthModel base = new SynthModel(ModelShapes.get("tiny-gqa"), DType.BF16, 10);
        LlamaConfig c = base.config();
        LlamaModel m = LlamaModel.load(base, new SingleRank(), pool);
        List<LoraAdapter> adapters = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            int rank = new int[]{1, 4, 8, 16, 32, 6, 12, 64}[i];
            int nb = i % 3 == 2 ? 2 : 0;
            if (nb > 0 && rank % 2 != 0) nb = 0;
            Path p = dir.resolve("a" + i);
            new SynthAdapter(rank, nb, i == 5 ? SynthAdapter.parseTargets("q,o,down") : SynthAdapter.allModules(),
                    i % 2 == 0 ? DType.F32 : DType.BF16, rank, i == 3, 0.3, 100 + i).write(p, c, "tiny-gqa");
            adapters.add(PeftAdapterLoader.load("a" + i, p, c, 64));
        }
        int nSeq = 32, vocab = c.vocabSize();
        SplittableRandom r = new SplittableRandom(77);
        int[][] prompts = new int[nSeq][];
        LoraAdapter[] which = new LoraAdapter[nSeq];
        for (int s = 0; s < nSeq; s++) {
            prompts[s] = tokens(1 + r.nextInt(30), vocab, 500 + s);
            which[s] = s % 9 == 8 ? null : adapters.get(s % 9);
        }
        // Alone.
        float[][] alone = new float[nSeq][vocab];
        for (int s = 0; s < nSeq; s++)
            m.forward(Step.ofSequence(m.newCache(4), prompts[s], 0, false, updates(m, which[s], prompts[s].length)), m.newWorkspace(), alone[s]);
        // All in one step, sequences interleaved token by token.
        List<int[]> order = new ArrayList<>(); // (sequence, position)
        int maxLen = 0;
        for (int[] p : prompts) maxLen = Math.max(maxLen, p.length);
        for (int pos = 0; pos < maxLen; pos++)
            for (int s = 0; s < nSeq; s++) if (pos < prompts[s].length) order.add(new int[]{s, pos});
        int T = order.size();
        int[] toks = new int[T], posArr = new int[T], rows = new int[nSeq];
        KvCache[] caches = new KvCache[T], own = new KvCache[nSeq];
        LoraAdapter[] ad = new LoraAdapter[T];
        for (int s = 0; s < nSeq; s++) own[s] = m.newCache(8);
        for (int i = 0; i < T; i++) {
            int s = order.get(i)[0], p = order.get(i)[1];
            toks[i] = prompts[s][p]; posArr[i] = p; caches[i] = own[s]; ad[i] = which[s];
            if (p == prompts[s].length - 1) rows[s] = i;
        }
        float[] got = new float[nSeq * vocab];
        RankAdapters rank = RankAdapters.of(m);
        m.forward(new Step(toks, posArr, caches, rows, rank.forStep(ad, LoraSharding.AUTO)), m.newWorkspace(), got);
        for (int s = 0; s < nSeq; s++) {
            float max = 0;
            for (float v : alone[s]) max = Math.max(max, Math.abs(v));
            for (int v = 0; v < vocab; v++) assertEquals(alone[s][v], got[s * vocab + v], 1e-4 * max, "sequence " + s + " token " + v);
        }
        assertTrue(rank.stats().bytes() > 0 && rank.stats().flops() > 0 && rank.stats().steps() == 1);
    }
}
