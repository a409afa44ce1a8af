package dev.bdserve.model.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.bdserve.model.gguf.GgmlCodec.HALF;
import static dev.bdserve.model.gguf.GgmlCodec.U32;
import static dev.bdserve.model.gguf.GgmlCodec.floatToHalf;
import static dev.bdserve.model.gguf.GgmlCodec.halfToFloat;
import static dev.bdserve.model.gguf.GgmlCodec.roundHalfAway;
import static dev.bdserve.model.gguf.GgmlCodec.truncToByte;

/**
 * The 32-weight block types Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: dequantisers (ggml's {@code dequantize_row_*}) and
 * reference quantisers ({@code quantize_row_*_ref}). In the 4- and 5-bit types byte {@code j} of the nibbles holds
 * weight {@code j} in its low and weight {@code j + 16} in its high nibble; the fifth bits of Q5 are a
 * little-endian 32-bit word, bit {@code i} for weight {@code i}. Callers ({@link GgmlCodec}) check the bounds.
 */
final class Blocks32 {
    private Blocks32() {}

    private static final int QK = 32;

    private static int u8(MemorySegment s, long at) { return s.get(ValueLayout.JAVA_BYTE, at) & 0xFF; }

    private static void put(MemorySegment s, long at, int b) { s.set(ValueLayout.JAVA_BYTE, at, (byte) b); }

    /**
     * {@code a + b} with ggml's NaN when both are NaN (as when d is infinite, q is 0 and m is NaN): x86's
     * {@code addss} returns its first operand's, while HotSpot may add either way round. {@code a} is the product
     * {@code q·d}, so already a quiet NaN.
     */
    private static float plus(float a, float b) { return a != a ? a : a + b; }

    /** {@code dequantize_row_q4_0}. Block (18 bytes): fp16 d, 16 bytes of nibbles q; w = (q − 8)·d. */
    static void dequantizeQ4_0(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK; b++, at += 18, yo += QK) {
            float d = halfToFloat(src.get(HALF, at));
            for (int j = 0; j < 16; j++) {
                int q = u8(src, at + 2 + j);
                y[yo + j] = ((q & 0xF) - 8) * d;
                y[yo + j + 16] = ((q >>> 4) - 8) * d;
            }
        }
    }

    /** {@code dequantize_row_q4_1}. Block (20 bytes): fp16 d, fp16 m, 16 bytes of nibbles q; w = q·d + m. */
    static void dequantizeQ4_1(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK; b++, at += 20, yo += QK) {
            float d = halfToFloat(src.get(HALF, at)), m = halfToFloat(src.get(HALF, at + 2));
            for (int j = 0; j < 16; j++) {
                int q = u8(src, at + 4 + j);
                y[yo + j] = plus((q & 0xF) * d, m);
                y[yo + j + 16] = plus((q >>> 4) * d, m);
            }
        }
    }

    /** {@code dequantize_row_q5_0}. Block (22 bytes): fp16 d, u32 fifth bits, 16 bytes of nibbles; w = (q − 16)·d. */
    static void dequantizeQ5_0(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK; b++, at += 22, yo += QK) {
            float d = halfToFloat(src.get(HALF, at));
            int qh = src.get(U32, at + 2);
            for (int j = 0; j < 16; j++) {
                int q = u8(src, at + 6 + j);
                y[yo + j] = ((q & 0xF | (qh >>> j & 1) << 4) - 16) * d;
                y[yo + j + 16] = ((q >>> 4 | (qh >>> j + 16 & 1) << 4) - 16) * d;
            }
        }
    }

    /** {@code dequantize_row_q5_1}. Block (24 bytes): fp16 d, fp16 m, u32 fifth bits, 16 bytes of nibbles; w = q·d + m. */
    static void dequantizeQ5_1(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK; b++, at += 24, yo += QK) {
            float d = halfToFloat(src.get(HALF, at)), m = halfToFloat(src.get(HALF, at + 2));
            int qh = src.get(U32, at + 4);
            for (int j = 0; j < 16; j++) {
                int q = u8(src, at + 8 + j);
                y[yo + j] = plus((q & 0xF | (qh >>> j & 1) << 4) * d, m);
                y[yo + j + 16] = plus((q >>> 4 | (qh >>> j + 16 & 1) << 4) * d, m);
            }
        }
    }

    /** {@code dequantize_row_q8_0}. Block (34 bytes): fp16 d, 32 int8 q; w = q·d. */
    static void dequantizeQ8_0(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK; b++, at += 34, yo += QK) {
            float d = halfToFloat(src.get(HALF, at));
            for (int j = 0; j < QK; j++) y[yo + j] = src.get(ValueLayout.JAVA_BYTE, at + 2 + j) * d;
        }
    }

    /**
     * {@code quantize_row_q4_0_ref}: d = −m/8 for the weight m of largest magnitude (the first one on ties), so m
     * maps to q = 0; q = min(15, trunc(x/d + 8.5)).
     */
    static void quantizeQ4_0(float[] x, int xo, int n, MemorySegment dst, long at) {
        for (int b = 0; b < n / QK; b++, xo += QK, at += 18) {
            float max = largestMagnitude(x, xo);
            float d = max / -8f;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(HALF, at, floatToHalf(d));
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(15, truncToByte(x[xo + j] * id + 8.5f));
                int q1 = Math.min(15, truncToByte(x[xo + j + 16] * id + 8.5f));
                put(dst, at + 2 + j, q0 | q1 << 4);
            }
        }
    }

    /** {@code quantize_row_q4_1_ref}: m = min, d = (max − min)/15; q = min(15, trunc((x − m)/d + 0.5)). */
    static void quantizeQ4_1(float[] x, int xo, int n, MemorySegment dst, long at) {
        for (int b = 0; b < n / QK; b++, xo += QK, at += 20) {
            float min = blockMin(x, xo), max = blockMax(x, xo);
            float d = (max - min) / 15f;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(HALF, at, floatToHalf(d));
            dst.set(HALF, at + 2, floatToHalf(min));
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(15, truncToByte((x[xo + j] - min) * id + 0.5f));
                int q1 = Math.min(15, truncToByte((x[xo + j + 16] - min) * id + 0.5f));
                put(dst, at + 4 + j, q0 | q1 << 4);
            }
        }
    }

    /** {@code quantize_row_q5_0_ref}: as Q4_0 with d = −m/16 and q = min(31, trunc(x/d + 16.5)). */
    static void quantizeQ5_0(float[] x, int xo, int n, MemorySegment dst, long at) {
        for (int b = 0; b < n / QK; b++, xo += QK, at += 22) {
            float max = largestMagnitude(x, xo);
            float d = max / -16f;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(HALF, at, floatToHalf(d));
            int qh = 0;
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(31, truncToByte(x[xo + j] * id + 16.5f));
                int q1 = Math.min(31, truncToByte(x[xo + j + 16] * id + 16.5f));
                put(dst, at + 6 + j, q0 & 0xF | (q1 & 0xF) << 4);
                qh |= (q0 >>> 4 & 1) << j | (q1 >>> 4 & 1) << j + 16;
            }
            dst.set(U32, at + 2, qh);
        }
    }

    /** {@code quantize_row_q5_1_ref}: m = min, d = (max − min)/31; q = trunc((x − m)/d + 0.5), no clamp. */
    static void quantizeQ5_1(float[] x, int xo, int n, MemorySegment dst, long at) {
        for (int b = 0; b < n / QK; b++, xo += QK, at += 24) {
            float min = blockMin(x, xo), max = blockMax(x, xo);
            float d = (max - min) / 31f;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(HALF, at, floatToHalf(d));
            dst.set(HALF, at + 2, floatToHalf(min));
            int qh = 0;
            for (int j = 0; j < 16; j++) {
                int q0 = truncToByte((x[xo + j] - min) * id + 0.5f);
                int q1 = truncToByte((x[xo + j + 16] - min) * id + 0.5f);
                put(dst, at + 8 + j, q0 & 0xF | (q1 & 0xF) << 4);
                qh |= (q0 >>> 4 & 1) << j | (q1 >>> 4 & 1) << j + 16;
            }
            dst.set(U32, at + 4, qh);
        }
    }

    /** The block's weight of largest magnitude, the first one on ties (Q4_0's and Q5_0's scale source); 0 if none is above 0. */
    private static float largestMagnitude(float[] x, int xo) {
        float amax = 0f, max = 0f;
        for (int j = 0; j < QK; j++) {
            float v = x[xo + j];
            if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
        }
        return max;
    }

    /** The block's smallest weight as ggml's {@code if (v < min)} scan finds it (NaNs never taken). */
    private static float blockMin(float[] x, int xo) {
        float min = Float.MAX_VALUE;
        for (int j = 0; j < QK; j++) if (x[xo + j] < min) min = x[xo + j];
        return min;
    }

    /** The block's largest weight as ggml's {@code if (v > max)} scan finds it (NaNs never taken). */
    private static float blockMax(float[] x, int xo) {
        float max = -Float.MAX_VALUE;
        for (int j = 0; j < QK; j++) if (x[xo + j] > max) max = x[xo + j];
        return max;
    }

    /** {@code quantize_row_q8_0_ref}: d = max|x|/127; q = roundf(x/d) (halves away from zero). */
    static void quantizeQ8_0(float[] x, int xo, int n, MemorySegment dst, long at) {
        for (int b = 0; b < n / QK; b++, xo += QK, at += 34) {
            float amax = 0f;
            for (int j = 0; j < QK; j++) {
                float a = Math.abs(x[xo + j]);
                amax = amax > a ? amax : a; // ggml's MAX(amax, a), also for NaNs: a NaN a is taken, a NaN amax dropped
            }
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(HALF, at, floatToHalf(d));
            for (int j = 0; j < QK; j++) put(dst, at + 2 + j, truncToByte(roundHalfAway(x[xo + j] * id)));
        }
    }
}
