package dev.bdserve.bench;

import static org.junit.jupiter.api.Assertions.*;

import dev.bdserve.tensor.SpinPool;
import org.junit.jupiter.api.Test;

/** Smoke test of the probes on small sizes (the real 1 GiB probe is for benchmarks only). */
class MemoryProbesTest {
    @Test
    void probesReturnPlausiblePositiveNumbers() {
        try (SpinPool pool = new SpinPool(2)) {
            double bw = MemoryProbes.streamReadBandwidthGBs(pool, 1 << 22, 2);
            assertTrue(bw > 0 && bw < 1e6, "bandwidth " + bw);   // positive and in GB/s (a unit slip is a factor 1e3 or more); no speed asserted
            float s = MemoryProbes.sum(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33}, 1, 33);
            assertEquals(33 * 34 / 2 - 1, s, 0f);
        }
    }

    @Test
    void quarterStreamSumCoversEveryElementOnce() {
        for (int n : new int[] {0, 31, 128, 1000, 70_001, 300_017}) {
            float[] a = new float[n + 10];
            for (int i = 0; i < a.length; i++) a[i] = i % 7;          // small integers: float sums stay exact
            double want = 0;
            for (int i = 5; i < 5 + n; i++) want += a[i];
            assertEquals(want, MemoryProbes.sum(a, 5, 5 + n), 0.0, "n=" + n);
        }
    }
}
