package dev.bdserve.model.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Scalar dequantisers and reference quantisers for the ggml tensor types, bit-exact with ggml's {@code to_float}
 * and {@code from_float_ref} (the same float operations in the same order). Data is little-endian, a run of whole
 * blocks at a byte offset of a {@link MemorySegment}. These are the slow, obviously correct twins that faster
 * kernels are checked against; the block layouts are in {@link GgmlType}.
 *
 * <p>In every dequantiser the products of scales and quants are exact in float (an fp16 scale has 11 significant
 * bits, its integer factors together at most 12: Q6_K's 7-bit scale times a 5-bit quant), so the only rounding is
 * the final addition of an offset ({@code q·d + m}, {@code d1·q − m1}): a faster kernel may multiply in any order,
 * or fuse that last step, and stay bit-exact. What it must keep is which NaN wins when both operands of that
 * addition are NaN (see Q4_1).
 *
 * <p>Where ggml's C leaves a result undefined (a float out of range converted to an integer: in rows holding
 * infinities or NaNs, rows whose spread overflows a float, or whose scale is so small that its reciprocal
 * overflows), the quantisers reproduce ggml's x86-64 build: the conversion yields {@code 0x80000000}, whose low
 * byte (0) is stored.
 */
public final class GgmlCodec {
    private GgmlCodec() {}

    static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Dequantises {@code n} weights (a whole number of blocks) of {@code type} stored at byte {@code offset} of
     * {@code src} into {@code dst[dstOffset .. dstOffset + n)}; mirrors ggml's {@code to_float} of the type.
     */
    public static void dequantize(GgmlType type, MemorySegment src, long offset, float[] dst, int dstOffset, int n) {
        long bytes = type.bytes(n);
        Objects.checkFromIndexSize(offset, bytes, src.byteSize());
        Objects.checkFromIndexSize(dstOffset, n, dst.length);
        switch (type) {
            case F32 -> MemorySegment.copy(src, F32, offset, dst, dstOffset, n);
            case F16 -> { for (int i = 0; i < n; i++) dst[dstOffset + i] = halfToFloat(src.get(HALF, offset + 2L * i)); }
            case BF16 -> { for (int i = 0; i < n; i++) dst[dstOffset + i] = Float.intBitsToFloat(src.get(HALF, offset + 2L * i) << 16); }
            case Q4_0 -> Blocks32.dequantizeQ4_0(src, offset, dst, dstOffset, n);
            case Q4_1 -> Blocks32.dequantizeQ4_1(src, offset, dst, dstOffset, n);
            case Q5_0 -> Blocks32.dequantizeQ5_0(src, offset, dst, dstOffset, n);
            case Q5_1 -> Blocks32.dequantizeQ5_1(src, offset, dst, dstOffset, n);
            case Q8_0 -> Blocks32.dequantizeQ8_0(src, offset, dst, dstOffset, n);
            case Q4_K -> KBlocks.dequantizeQ4_K(src, offset, dst, dstOffset, n);
            case Q5_K -> KBlocks.dequantizeQ5_K(src, offset, dst, dstOffset, n);
            case Q6_K -> KBlocks.dequantizeQ6_K(src, offset, dst, dstOffset, n);
            default -> throw new UnsupportedOperationException("dequantising " + type + " is not implemented");
        }
    }

    /** Whether {@link #quantize} supports {@code type}: all of {@link GgmlType} (the float, 32-weight block and K types). */
    public static boolean canQuantize(GgmlType type) {
        return true;
    }

    /**
     * Quantises {@code src[srcOffset .. srcOffset + n)} ({@code n} a whole number of blocks) to {@code type} at byte
     * {@code offset} of {@code dst}; mirrors ggml's {@code from_float_ref} (e.g. {@code quantize_row_q8_0_ref}), the
     * deterministic quantiser ggml uses to write model files (for the K-quants: without an importance matrix, as
     * llama-quantize does when given none). F32 is a plain copy (ggml has no function for it).
     */
    public static void quantize(GgmlType type, float[] src, int srcOffset, int n, MemorySegment dst, long offset) {
        long bytes = type.bytes(n);
        Objects.checkFromIndexSize(srcOffset, n, src.length);
        Objects.checkFromIndexSize(offset, bytes, dst.byteSize());
        switch (type) {
            case F32 -> MemorySegment.copy(src, srcOffset, dst, F32, offset, n);
            case F16 -> { for (int i = 0; i < n; i++) dst.set(HALF, offset + 2L * i, floatToHalf(src[srcOffset + i])); }
            case BF16 -> { for (int i = 0; i < n; i++) dst.set(HALF, offset + 2L * i, floatToBf16(src[srcOffset + i])); }
            case Q4_0 -> Blocks32.quantizeQ4_0(src, srcOffset, n, dst, offset);
            case Q4_1 -> Blocks32.quantizeQ4_1(src, srcOffset, n, dst, offset);
            case Q5_0 -> Blocks32.quantizeQ5_0(src, srcOffset, n, dst, offset);
            case Q5_1 -> Blocks32.quantizeQ5_1(src, srcOffset, n, dst, offset);
            case Q8_0 -> Blocks32.quantizeQ8_0(src, srcOffset, n, dst, offset);
            case Q4_K -> KBlocks.quantizeQ4_K(src, srcOffset, n, dst, offset);
            case Q5_K -> KBlocks.quantizeQ5_K(src, srcOffset, n, dst, offset);
            case Q6_K -> KBlocks.quantizeQ6_K(src, srcOffset, n, dst, offset);
        }
    }

    /** {@link #quantize(GgmlType, float[], int, int, MemorySegment, long)} into a byte array. */
    public static void quantize(GgmlType type, float[] src, int srcOffset, int n, byte[] dst, int dstOffset) {
        quantize(type, src, srcOffset, n, MemorySegment.ofArray(dst), dstOffset);
    }

    /**
     * An IEEE half as ggml's {@code GGML_FP16_TO_FP32} reads it: exact, except that ggml's conversion goes through
     * a float multiplication, which turns a signalling NaN into a quiet one (same sign and payload, quiet bit set).
     * The JDK's x86 intrinsic of {@code float16ToFloat} quiets it too, but its Java fallback does not.
     */
    public static float halfToFloat(short h) {
        float f = Float.float16ToFloat(h);
        return f != f ? Float.intBitsToFloat(Float.floatToRawIntBits(f) | 0x0040_0000) : f;
    }

    /**
     * A float rounded to an IEEE half (to nearest, ties to even, overflow to infinity) as ggml's
     * {@code GGML_FP32_TO_FP16} does; every NaN becomes the quiet NaN {@code 0x7E00} with the float's sign.
     */
    public static short floatToHalf(float f) {
        if (f != f) return (short) (Float.floatToRawIntBits(f) >>> 16 & 0x8000 | 0x7E00);
        return Float.floatToFloat16(f);
    }

    /**
     * A float rounded to bfloat16 (to nearest, ties to even) as ggml's {@code ggml_compute_fp32_to_bf16}; a NaN
     * keeps its top 16 bits with the quiet bit set.
     */
    public static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7FFF_FFFF) > 0x7F80_0000) return (short) (u >>> 16 | 0x40);
        return (short) ((u + 0x7FFF + (u >>> 16 & 1)) >>> 16);
    }

    /**
     * C's float-to-{@code int8_t}/{@code uint8_t} conversion as ggml's x86-64 build performs it: truncation toward
     * zero to a 32-bit int ({@code 0x80000000} when out of range or NaN), of which the low byte is kept.
     */
    static int truncToByte(float f) {
        int i = f >= -0x1p31f && f < 0x1p31f ? (int) f : Integer.MIN_VALUE;
        return (byte) i;
    }

    /** C's {@code roundf}: to nearest, halves away from zero (Java's {@code Math.round} rounds them up). */
    static float roundHalfAway(float f) {
        if (!(Math.abs(f) < 0x1p23f)) return f; // already integral, infinite or NaN
        return (float) Math.copySign(Math.floor(Math.abs((double) f) + 0.5), f);
    }
}
