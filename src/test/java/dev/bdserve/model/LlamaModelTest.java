package dev.bdserve.model;

import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.SpinPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The vectorised, batched forward pass against the fp64 reference and against itself run one sequence at a time. */
class LlamaModelTest {
    static Parallel pool;

    @BeforeAll static void start() { pool = new SpinPool(2); }
    @AfterAll static void stop() { pool.close(); }

    static int[] randomTokens(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(vocab);
        return t;
    }

    static double maxAbs(double[][] a) {
        double m = 0;
        for (double[] r : a) for (double v : r) m = Math.max(m, Math.abs(v));
        return m;
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"tiny, F32", "tiny-gqa, F32", "tiny, BF16", "tiny-gqa, BF16", "tiny, F16", "stories260k, F32"})
    void matchesFp64ReferenceAtEveryPosition(String shape, DType dtype) {
        SynthModel src = new SynthModel(ModelShapes.get(shape), dtype, 7);
        LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
        int vocab = src.config().vocabSize();
        int[] toks = randomTokens(37, vocab, 3);
        double[][] ref = new ReferenceLlama(src).logits(toks);
        float[] got = new float[toks.length * vocab];
        m.forward(Step.ofSequence(m.newCache(8), toks, 0, true), m.newWorkspace(), got);
        double tol = 1e-4 * maxAbs(ref);
        for (int t = 0; t < toks.length; t++)
            for (int v = 0; v < vocab; v++)
                assertEquals(ref[t][v], got[t * vocab + v], tol, "position " + t + " token " + v);
    }

    @Test
    void chunkedPrefillAndDecodeEqualOneShotPrefill() {
        SynthModel src = new SynthModel(ModelShapes.get("tiny-gqa"), DType.F32, 11);
        LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
        int vocab = src.config().vocabSize();
        int[] toks = randomTokens(50, vocab, 5);
        float[] all = new float[toks.length * vocab];
        m.forward(Step.ofSequence(m.newCache(64), toks, 0, true), m.newWorkspace(), all);
        // Same tokens in chunks of 7, then one at a time.
        KvCache c = m.newCache(1);
        LlamaModel.Workspace ws = m.newWorkspace();
        int pos = 0;
        float[] row = new float[vocab];
        while (pos < toks.length) {
            int n = pos < 35 ? Math.min(7, 35 - pos) : 1;
            int[] chunk = java.util.Arrays.copyOfRange(toks, pos, pos + n);
            m.forward(Step.ofSequence(c, chunk, pos, false), ws, row);
            pos += n;
            for (int v = 0; v < vocab; v++) assertEquals(all[(pos - 1) * vocab + v], row[v], 1e-4, "position " + (pos - 1));
        }
        assertEquals(toks.length, c.length());
    }

    @Test
    void batchOfSequencesEqualsEachSequenceAlone() {
        SynthModel src = new SynthModel(ModelShapes.get("tiny"), DType.BF16, 13);
        LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
        int vocab = src.config().vocabSize();
        int[] lens = {1, 9, 4, 17, 2};
        int total = 0;
        for (int l : lens) total += l;
        int[][] prompts = new int[lens.length][];
        for (int s = 0; s < lens.length; s++) prompts[s] = randomTokens(lens[s], vocab, 100 + s);
        // Alone.
        float[][] alone = new float[lens.length][vocab];
        for (int s = 0; s < lens.length; s++)
            m.forward(Step.ofSequence(m.newCache(4), prompts[s], 0, false), m.newWorkspace(), alone[s]);
        // Together in one step, interleaved order of sequences.
        int[] toks = new int[total], pos = new int[total], rows = new int[lens.length];
        KvCache[] caches = new KvCache[total];
        KvCache[] own = new KvCache[lens.length];
        for (int s = 0; s < lens.length; s++) own[s] = m.newCache(2);
        int k = 0;
        for (int s = lens.length - 1; s >= 0; s--)
            for (int p = 0; p < lens[s]; p++) {
                toks[k] = prompts[s][p]; pos[k] = p; caches[k] = own[s];
                if (p == lens[s] - 1) rows[s] = k;
                k++;
            }
        float[] got = new float[lens.length * vocab];
        m.forward(new Step(toks, pos, caches, rows), m.newWorkspace(), got);
        for (int s = 0; s < lens.length; s++)
            for (int v = 0; v < vocab; v++) assertEquals(alone[s][v], got[s * vocab + v], 1e-4, "sequence " + s);
    }

    @Test
    void rejectsPositionsBeyondTheContextAndBadTokens() {
        SynthModel src = new SynthModel(ModelShapes.get("tiny"), DType.F32, 1);
        LlamaModel m = LlamaModel.load(src, new SingleRank(), pool);
        int max = src.config().maxPositions();
        var e = assertThrows(IllegalArgumentException.class,
                () -> m.forward(Step.ofSequence(m.newCache(1), new int[]{1}, max, false), m.newWorkspace(), new float[256]));
        assertTrue(e.getMessage().contains("context limit"), e.getMessage());
        var e2 = assertThrows(IllegalArgumentException.class,
                () -> m.forward(Step.ofSequence(m.newCache(1), new int[]{999}, 0, false), m.newWorkspace(), new float[256]));
        assertTrue(e2.getMessage().contains("outside the vocabulary"), e2.getMessage());
    }

    /** Llama's variant departs in nothing; an invalid variant is refused when built. */
    @Test
    void variantsAreValidated() {
        LlamaConfig c = ModelShapes.get("tiny");
        assertEquals(java.util.List.of(), DecoderVariant.LLAMA.departures());
        assertEquals(DecoderVariant.LLAMA, c.variant());
        assertThrows(IllegalArgumentException.class, () -> new DecoderVariant("mistral", false, false, DecoderVariant.Norm.WEIGHT,
                DecoderVariant.Activation.SILU, false, false, -1));
    }
}
