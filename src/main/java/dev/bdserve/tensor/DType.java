package dev.bdserve.tensor;

/** Element types of stored weights. Activations are always fp32. */
public enum DType {
    F32(4, "F32"),
    BF16(2, "BF16"),
    F16(2, "F16");

    private final int bytes;
    private final String safetensorsName;

    DType(int bytes, String safetensorsName) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
    }

    /** Bytes per element. */
    public int bytes() { return bytes; }

    /** The dtype string used in safetensors headers ("F32", "BF16", "F16"). */
    public String safetensorsName() { return safetensorsName; }

    /** Parses a safetensors dtype name, or returns null if it is not one we compute with. */
    public static DType fromSafetensors(String name) {
        for (DType d : values()) if (d.safetensorsName.equals(name)) return d;
        return null;
    }

    /** Parses a user-facing name: f32/fp32/float32, bf16/bfloat16, f16/fp16/float16. */
    public static DType parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32", "float" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "f16", "fp16", "float16", "half" -> F16;
            default -> throw new IllegalArgumentException("unknown dtype '" + s + "' (expected f32, bf16 or f16)");
        };
    }
}
