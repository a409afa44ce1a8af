package dev.bdserve.engine;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    static final float[] LOGITS = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f, -1f};

    static SamplingParams p(double t, int k, double topP, double minP) {
        return new SamplingParams(t, k, topP, minP, 1L, List.of(), false);
    }

    static int[] histogram(SamplingParams sp, int draws) {
        int[] h = new int[LOGITS.length];
        SplittableRandom r = new SplittableRandom(99);
        for (int i = 0; i < draws; i++) h[Sampler.sample(LOGITS, 0, LOGITS.length, sp, r)]++;
        return h;
    }

    @Test
    void greedyAndTopKOneAreArgmax() {
        assertEquals(1, Sampler.sample(LOGITS, 0, LOGITS.length, SamplingParams.greedy(), new SplittableRandom()));
        int[] h = histogram(p(1.5, 1, 1, 0), 500);
        assertEquals(500, h[1]);
    }

    @Test
    void temperatureOneFollowsSoftmax() {
        int n = 200_000;
        int[] h = histogram(p(1, 0, 1, 0), n);
        double[] prob = Sampler.softmax(LOGITS, 0, LOGITS.length, 1);
        for (int i = 0; i < LOGITS.length; i++) {
            double sd = Math.sqrt(n * prob[i] * (1 - prob[i]));
            assertEquals(n * prob[i], h[i], 5 * sd + 1, "token " + i);
        }
    }

    @Test
    void topKKeepsOnlyTheKBest() {
        int[] h = histogram(p(1, 2, 1, 0), 20_000);
        assertTrue(h[1] > 0 && h[4] > 0);
        assertEquals(0, h[0] + h[2] + h[3] + h[5]);
    }

    @Test
    void topPKeepsTheNucleus() {
        double[] prob = Sampler.softmax(LOGITS, 0, LOGITS.length, 1); // 1: .39, 4: .36, 2: .14, 0: .05 ...
        double p = prob[1] + prob[4] - 1e-6;
        int[] h = histogram(p(1, 0, p, 0), 20_000);
        assertTrue(h[1] > 0 && h[4] > 0);
        assertEquals(0, h[0] + h[2] + h[3] + h[5]);
        int[] h3 = histogram(p(1, 0, prob[1] + prob[4] + 1e-3, 0), 20_000);
        assertTrue(h3[2] > 0, "the third token enters once the first two do not reach top_p");
        assertEquals(0, h3[0] + h3[3] + h3[5]);
    }

    @Test
    void minPDropsTokensBelowTheFloor() {
        double[] prob = Sampler.softmax(LOGITS, 0, LOGITS.length, 1);
        double minP = prob[2] / prob[1] + 1e-3; // just above token 2's ratio
        int[] h = histogram(p(1, 0, 1, minP), 20_000);
        assertEquals(0, h[2] + h[0] + h[3] + h[5]);
        assertTrue(h[1] > 0 && h[4] > 0);
    }

    @Test
    void sameSeedSameDraws() {
        SamplingParams sp = p(1, 0, 0.95, 0);
        SplittableRandom a = new SplittableRandom(5), b = new SplittableRandom(5);
        for (int i = 0; i < 100; i++)
            assertEquals(Sampler.sample(LOGITS, 0, 6, sp, a), Sampler.sample(LOGITS, 0, 6, sp, b));
    }

    @Test
    void invalidParametersAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> p(-1, 0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> p(1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> p(1, 0, 1.5, 0));
        assertThrows(IllegalArgumentException.class, () -> p(1, 0, 1, 2));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 0, 1, 0, null, List.of(""), false));
    }

    /** NaN or +Inf anywhere, or −Inf everywhere: a clear failure under every kind of sampling, never an index of −1. */
    @Test
    void aRowNoTokenCanBeDrawnFromIsRefusedUnderEverySampling() {
        SamplingParams[] all = {SamplingParams.greedy(), p(1, 0, 1, 0), p(0.8, 0, 0.9, 0), p(1, 0, 1, 0.1), p(1, 3, 0.5, 0.05)};
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            for (int at : new int[] {0, 3, LOGITS.length - 1}) {
                float[] row = LOGITS.clone();
                row[at] = bad;
                for (SamplingParams sp : all) {
                    IllegalStateException e = assertThrows(IllegalStateException.class,
                            () -> Sampler.sample(row, 0, row.length, sp, new SplittableRandom(1)), bad + " at " + at + " " + sp);
                    assertTrue(e.getMessage().contains(bad + " at token id " + at), e.getMessage());
                }
            }
        }
        float[] none = new float[LOGITS.length];
        java.util.Arrays.fill(none, Float.NEGATIVE_INFINITY);
        for (SamplingParams sp : all)
            assertTrue(assertThrows(IllegalStateException.class, () -> Sampler.sample(none, 0, none.length, sp, new SplittableRandom(1)))
                    .getMessage().contains("no token can be sampled"));
    }

    /** −Inf marks a masked token: never drawn, whatever the sampling; the others keep their odds. */
    @Test
    void maskedTokensAreNeverDrawn() {
        SamplingParams[] all = {SamplingParams.greedy(), p(1, 0, 1, 0), p(0.8, 0, 0.9, 0), p(1, 0, 1, 0.1), p(1, 3, 0.5, 0.05), p(100, 0, 1, 0)};
        SplittableRandom r = new SplittableRandom(3);
        for (int trial = 0; trial < 200; trial++) {
            float[] row = LOGITS.clone();
            int kept = r.nextInt(row.length);
            for (int i = 0; i < row.length; i++) if (i != kept && r.nextBoolean()) row[i] = Float.NEGATIVE_INFINITY;
            for (SamplingParams sp : all) {
                int t = Sampler.sample(row, 0, row.length, sp, r);
                assertTrue(row[t] > Float.NEGATIVE_INFINITY, "drew masked token " + t + " under " + sp);
            }
        }
    }
}
