package dev.bdserve.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Map;

/**
 * Rounding of the figures benchmarks print as JSON. A figure keeps three decimals or four significant digits,
 * whichever is more precise, so a small non-zero fraction (a tiny model against a fast machine's peak) never
 * prints as 0 and a large one carries no noise digits.
 */
public final class Figures {
    private static final MathContext FOUR_DIGITS = new MathContext(4);
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private Figures() {}

    /** {@code v} to three decimals, or to four significant digits where it is below 1 in magnitude; NaN, ±Inf and 0 unchanged. */
    public static double round(double v) {
        if (v == 0 || !Double.isFinite(v)) return v;
        if (Math.abs(v) >= 1) return new BigDecimal(v).setScale(3, RoundingMode.HALF_UP).doubleValue();
        return new BigDecimal(v).round(FOUR_DIGITS).doubleValue();
    }

    /** A benchmark's figures as the indented JSON object the {@code bench} commands print. */
    public static String json(Map<String, ?> figures) {
        try {
            return JSON.writeValueAsString(figures);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("benchmark figures cannot be written as JSON: " + e.getOriginalMessage(), e);
        }
    }
}
