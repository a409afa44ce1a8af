package dev.bdserve.engine;

import dev.bdserve.model.KvDtype;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A BF16 KV cache: the logits stay within bf16's rounding of the fp32 cache's, a prompt run at once equals the same
 * tokens decoded one by one (both read what the cache rounded), TP 2 equals TP 1, and a budget holds twice the blocks.
 */
class KvCacheDtypeTest {
    static final int T = 40;

    /** Logits [T][vocab] of a sequence through the group: at once (one step), or one token per step. */
    static float[][] logits(String shape, KvDtype dtype, int tp, boolean oneByOne) {
        LlamaConfig c = ModelShapes.get(shape);
        int[] toks = new int[T];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < T; i++) toks[i] = 3 + r.nextInt(c.vocabSize() - 3);
        TpGroup.Options o = new TpGroup.Options(tp, 1, dev.bdserve.lora.LoraSharding.AUTO, dev.bdserve.lora.LoraSharding.REPLICATED, 0)
                .withKvCache(4L << 20, 16).withKvDtype(dtype);
        try (TpGroup g = TpGroup.threads(() -> new SynthModel(c, DType.F32, 11), o)) {
            int vocab = c.vocabSize();
            int[][] tables = {new BlockManager(g.kvBlocks(), g.kvBlockSize()).allocateTable(T)};
            float[][] out = new float[T][vocab];
            if (!oneByOne) {
                int[] pos = new int[T], seq = new int[T], ads = new int[T], rows = new int[T];
                for (int i = 0; i < T; i++) { pos[i] = i; ads[i] = -1; rows[i] = i; }
                float[] flat = new float[T * vocab];
                g.forward(new StepBatch(toks, pos, seq, ads, rows, tables), flat);
                for (int i = 0; i < T; i++) out[i] = Arrays.copyOfRange(flat, i * vocab, (i + 1) * vocab);
            } else {
                for (int i = 0; i < T; i++)
                    g.forward(new StepBatch(new int[]{toks[i]}, new int[]{i}, new int[]{0}, new int[]{-1}, new int[]{0}, tables), out[i]);
            }
            return out;
        }
    }

    static double maxRelDiff(float[][] a, float[][] b) {
        double m = 0, range = 0;
        for (int t = 0; t < a.length; t++)
            for (int v = 0; v < a[t].length; v++) {
                m = Math.max(m, Math.abs(a[t][v] - b[t][v]));
                range = Math.max(range, Math.abs(a[t][v]));
            }
        return m / range;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"tiny", "tiny-gqa", "tiny-gemma3", "tiny-phi3", "tiny-qwen3"})
    void bf16StaysNearF32AndIsConsistentAcrossStepsAndRanks(String shape) {
        float[][] f32 = logits(shape, KvDtype.F32, 1, false), bf16 = logits(shape, KvDtype.BF16, 1, false);
        double vsF32 = maxRelDiff(f32, bf16);
        System.out.printf("%s: BF16 vs F32 KV cache, max |Δlogit| / max |logit| = %.2e%n", shape, vsF32);
        assertTrue(vsF32 > 0, shape + ": the BF16 cache must round something");
        assertTrue(vsF32 < 2e-2, shape + ": BF16 cache moves the logits by " + vsF32 + " of their magnitude");
        double steps = maxRelDiff(bf16, logits(shape, KvDtype.BF16, 1, true)), ranks = maxRelDiff(bf16, logits(shape, KvDtype.BF16, 2, false));
        System.out.printf("%s: BF16 cache, prefill vs decode %.2e, TP 2 vs TP 1 %.2e%n", shape, steps, ranks);
        // the fp32 sums of one token's k / v differ in their last bits between a prompt step and a decode step, and
        // between TP degrees (the all-reduce order): now and then that moves a bf16 rounding by one unit
        assertTrue(steps < vsF32, shape + ": prefill and decode differ by " + steps + ", more than bf16's rounding " + vsF32);
        assertTrue(ranks < vsF32, shape + ": TP 2 differs from TP 1 by " + ranks + ", more than bf16's rounding " + vsF32);
    }

    @Test
    void aBudgetHoldsTwiceTheBlocksInBf16() {
        LlamaConfig c = ModelShapes.get("tiny");
        TpGroup.Options o = TpGroup.Options.single(1).withKvCache(1L << 20, 16);
        try (TpGroup f = TpGroup.threads(() -> new SynthModel(c, DType.F32, 1), o);
             TpGroup b = TpGroup.threads(() -> new SynthModel(c, DType.F32, 1), o.withKvDtype(KvDtype.BF16))) {
            assertEquals(2 * f.kvBlocks(), b.kvBlocks());
        }
        assertEquals(KvDtype.BF16, KvDtype.parse("BF16"));
        var e = assertThrows(IllegalArgumentException.class, () -> KvDtype.parse("fp8"));
        assertTrue(e.getMessage().contains("unknown KV cache dtype 'fp8' (expected f32 or bf16)"), e.getMessage());
    }
}
