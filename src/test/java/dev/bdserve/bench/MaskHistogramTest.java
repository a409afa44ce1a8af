package dev.bdserve.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The bench's reading of the server's mask-time histogram: sums over adapters, differences, interpolated quantiles. */
class MaskHistogramTest {
    static String text(long a1, long a2, long aInf, long b1, long b2, long bInf) {
        return "# TYPE bdserve:structured_mask_seconds histogram\n"
                + "bdserve:structured_mask_seconds_bucket{adapter=\"\",model_name=\"m\",le=\"0.001\"} " + a1 + "\n"
                + "bdserve:structured_mask_seconds_bucket{adapter=\"\",model_name=\"m\",le=\"0.002\"} " + a2 + "\n"
                + "bdserve:structured_mask_seconds_bucket{adapter=\"\",model_name=\"m\",le=\"+Inf\"} " + aInf + "\n"
                + "bdserve:structured_mask_seconds_count{adapter=\"\",model_name=\"m\"} " + aInf + "\n"
                + "bdserve:structured_mask_seconds_bucket{adapter=\"x\",model_name=\"m\",le=\"0.001\"} " + b1 + "\n"
                + "bdserve:structured_mask_seconds_bucket{adapter=\"x\",model_name=\"m\",le=\"0.002\"} " + b2 + "\n"
                + "bdserve:structured_mask_seconds_bucket{adapter=\"x\",model_name=\"m\",le=\"+Inf\"} " + bInf + "\n"
                + "vllm:other_bucket{le=\"1\"} 5\n";
    }

    @Test
    void quantilesOfTheRunInterpolateWithinBuckets() {
        MaskHistogram before = MaskHistogram.parse(text(10, 10, 10, 0, 0, 0));
        MaskHistogram after = MaskHistogram.parse(text(30, 60, 60, 20, 50, 60));
        MaskHistogram run = after.minus(before);
        assertEquals(110, run.count());                       // 50 + 60
        // cumulative in the run: 40 ≤ 1 ms, 100 ≤ 2 ms, 110 in all
        assertEquals(0.001 + 0.001 * (55 - 40) / 60.0, run.quantile(0.5), 1e-12);
        assertEquals(0.002, run.quantile(0.99), 1e-12);       // in +Inf: the highest finite bound
        assertEquals(0.001 * 11 / 40.0, run.quantile(0.1), 1e-12);
        assertTrue(Double.isNaN(MaskHistogram.parse("").quantile(0.5)));
        assertEquals(0, MaskHistogram.parse("nothing here").count());
        assertEquals(60, after.minus(MaskHistogram.parse("")).cumulative()[1] - 50);
    }
}
