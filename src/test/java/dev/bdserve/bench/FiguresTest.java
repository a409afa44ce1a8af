package dev.bdserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Benchmark figures keep their significant digits through the JSON the bench commands print. */
class FiguresTest {
    @Test
    void aTinyFractionSurvivesTheJsonPath() throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("compute_peak_fraction", Figures.round(1e-6));
        out.put("bandwidth_roofline_fraction", Figures.round(0.0031234567));
        out.put("decode_tokens_per_s", Figures.round(1100.42049));
        JsonNode back = new ObjectMapper().readTree(Figures.json(out));
        assertEquals(1e-6, back.path("compute_peak_fraction").asDouble(), 0.0, back.toString());
        assertTrue(back.path("compute_peak_fraction").asDouble() > 0, back.toString());
        assertEquals(0.003123, back.path("bandwidth_roofline_fraction").asDouble(), 0.0, back.toString());
        assertEquals(1100.42, back.path("decode_tokens_per_s").asDouble(), 0.0, back.toString());
    }

    @Test
    void roundingKeepsThreeDecimalsOrFourSignificantDigits() {
        assertEquals(0.0, Figures.round(0.0));
        assertTrue(Double.isNaN(Figures.round(Double.NaN)));
        assertEquals(Double.POSITIVE_INFINITY, Figures.round(Double.POSITIVE_INFINITY));
        assertEquals(12.346, Figures.round(12.3456));
        assertEquals(-0.0001235, Figures.round(-0.00012345678));
        assertEquals(1e300, Figures.round(1e300), 1e288);
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < 10_000; i++) {
            double v = Math.pow(10, r.nextDouble(-12, 12)) * (r.nextBoolean() ? 1 : -1);
            double got = Figures.round(v);
            assertNotEquals(0.0, got, "v=" + v);
            assertEquals(Math.signum(v), Math.signum(got), "v=" + v);
            double tolerance = Math.abs(v) >= 1 ? 5e-4 + 1e-12 * Math.abs(v) : 5e-4 * Math.abs(v) + 1e-18;
            assertEquals(v, got, tolerance, "v=" + v);
        }
    }
}
