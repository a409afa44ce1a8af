package dev.bdserve.model;

import java.util.Locale;

/**
 * How the KV cache stores keys and values: fp32, or bf16 (rounded to nearest even when written, widened exactly
 * when read), which halves the cache's memory and the bytes attention reads per position.
 */
public enum KvDtype {
    F32(4), BF16(2);

    private final int bytes;

    KvDtype(int bytes) { this.bytes = bytes; }

    /** Bytes per stored value. */
    public int bytes() { return bytes; }

    /** "f32" / "bf16" (case-insensitive), as --kv-cache-dtype takes it. */
    public static KvDtype parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException("unknown KV cache dtype '" + s + "' (expected f32 or bf16)");
        };
    }

    @Override public String toString() { return name().toLowerCase(Locale.ROOT); }
}
