package dev.bdserve.tensor;

/** Scalar conversions between fp32 and 16-bit formats. */
public final class Numerics {
    private Numerics() {}

    /** bf16 bit pattern to fp32 (exact). */
    public static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xFFFF) << 16); }

    /** fp32 to bf16 with round-to-nearest-even; NaN stays NaN. */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7FFFFFFF) > 0x7F800000) return (short) ((x >>> 16) | 0x40); // quiet NaN
        int rounding = 0x7FFF + ((x >>> 16) & 1);
        return (short) ((x + rounding) >>> 16);
    }

    /** fp16 bit pattern to fp32 (exact). */
    public static float f16ToFloat(short h) { return Float.float16ToFloat(h); }

    /** fp32 to fp16, round-to-nearest-even. */
    public static short floatToF16(float f) { return Float.floatToFloat16(f); }
}
