package dev.bdserve.model.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.bdserve.model.gguf.GgmlCodec.HALF;
import static dev.bdserve.model.gguf.GgmlCodec.halfToFloat;

/**
 * Dequantisers of the K-quants Q4_K, Q5_K and Q6_K (ggml's {@code dequantize_row_q4_K} etc.): super-blocks of 256
 * weights in sub-blocks with their own integer scales under an fp16 super-block scale. As in ggml, each
 * sub-block's float scale and offset ({@code d·sc}, {@code dmin·m}) are formed first and then applied to the
 * quants (all these products are exact, see {@link GgmlCodec}). Callers ({@link GgmlCodec}) check the bounds.
 */
final class KBlocks {
    private KBlocks() {}

    private static final int QK_K = 256;

    private static int u8(MemorySegment s, long at) { return s.get(ValueLayout.JAVA_BYTE, at) & 0xFF; }

    /**
     * Sub-block {@code j} (0–7) of the 12 bytes of 6-bit scales and mins of Q4_K and Q5_K (ggml's
     * {@code get_scale_min_k4}): bytes 0–3 hold the scales of sub-blocks 0–3 in their low 6 bits, bytes 4–7 their
     * mins; sub-blocks 4–7 take their low 4 bits from the nibbles of bytes 8–11 (scale low, min high) and their top
     * 2 bits from the top bits of bytes 0–3 (scale) and 4–7 (min). Returns {@code scale | min << 8}.
     */
    static int scaleMin(MemorySegment s, long scales, int j) {
        if (j < 4) return u8(s, scales + j) & 63 | (u8(s, scales + j + 4) & 63) << 8;
        int packed = u8(s, scales + j + 4);
        int sc = packed & 0xF | (u8(s, scales + j - 4) >>> 6) << 4;
        int m = packed >>> 4 | (u8(s, scales + j) >>> 6) << 4;
        return sc | m << 8;
    }

    /**
     * {@code dequantize_row_q4_K}. Super-block (144 bytes): fp16 d, fp16 dmin, 12 bytes of scales and mins,
     * 128 bytes of nibbles. Weights 64g..64g+31 are the low nibbles of bytes 32g..32g+31 with sub-block 2g's scale
     * and min, weights 64g+32.. their high nibbles with sub-block 2g+1's; w = (d·sc)·q − (dmin·m).
     */
    static void dequantizeQ4_K(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK_K; b++, at += 144) {
            float d = halfToFloat(src.get(HALF, at)), dmin = halfToFloat(src.get(HALF, at + 2));
            for (int g = 0; g < 4; g++, yo += 64) {
                int sm1 = scaleMin(src, at + 4, 2 * g), sm2 = scaleMin(src, at + 4, 2 * g + 1);
                float d1 = d * (sm1 & 0xFF), m1 = dmin * (sm1 >>> 8);
                float d2 = d * (sm2 & 0xFF), m2 = dmin * (sm2 >>> 8);
                long qs = at + 16 + 32L * g;
                for (int l = 0; l < 32; l++) y[yo + l] = d1 * (u8(src, qs + l) & 0xF) - m1;
                for (int l = 0; l < 32; l++) y[yo + 32 + l] = d2 * (u8(src, qs + l) >>> 4) - m2;
            }
        }
    }

    /**
     * {@code dequantize_row_q5_K}. Super-block (176 bytes): as Q4_K (d, dmin, 12 bytes of scales and mins) then
     * 32 bytes of fifth bits and 128 bytes of nibbles; weight 64g+l takes bit 2g of fifth-bit byte l, weight
     * 64g+32+l bit 2g+1.
     */
    static void dequantizeQ5_K(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK_K; b++, at += 176) {
            float d = halfToFloat(src.get(HALF, at)), dmin = halfToFloat(src.get(HALF, at + 2));
            long qh = at + 16;
            for (int g = 0; g < 4; g++, yo += 64) {
                int sm1 = scaleMin(src, at + 4, 2 * g), sm2 = scaleMin(src, at + 4, 2 * g + 1);
                float d1 = d * (sm1 & 0xFF), m1 = dmin * (sm1 >>> 8);
                float d2 = d * (sm2 & 0xFF), m2 = dmin * (sm2 >>> 8);
                long qs = at + 48 + 32L * g;
                for (int l = 0; l < 32; l++) {
                    int q = u8(src, qs + l), h = u8(src, qh + l);
                    y[yo + l] = d1 * ((q & 0xF) + ((h >>> 2 * g & 1) << 4)) - m1;
                    y[yo + 32 + l] = d2 * ((q >>> 4) + ((h >>> 2 * g + 1 & 1) << 4)) - m2;
                }
            }
        }
    }

    /**
     * {@code dequantize_row_q6_K}. Super-block (210 bytes): 128 bytes of low nibbles, 64 bytes of high 2-bit pairs,
     * 16 int8 scales of 16-weight sub-blocks, fp16 d. Each half of 128 weights uses 64 nibble bytes, 32 high-bit
     * bytes and 8 scales: for l in 0..31, weights l, l+32, l+64, l+96 are the low nibble of byte l, of byte l+32,
     * the high nibble of byte l, of byte l+32, topped by bits 0–1, 2–3, 4–5, 6–7 of high byte l; w = (d·sc)·(q − 32).
     */
    static void dequantizeQ6_K(MemorySegment src, long at, float[] y, int yo, int n) {
        for (int b = 0; b < n / QK_K; b++, at += 210) {
            float d = halfToFloat(src.get(HALF, at + 208));
            for (int half = 0; half < 2; half++, yo += 128) {
                long ql = at + 64L * half, qh = at + 128 + 32L * half, sc = at + 192 + 8L * half;
                for (int l = 0; l < 32; l++) {
                    int lo = u8(src, ql + l), hi = u8(src, ql + l + 32), h = u8(src, qh + l);
                    int s = l / 16;
                    y[yo + l] = d * src.get(ValueLayout.JAVA_BYTE, sc + s) * ((lo & 0xF | (h & 3) << 4) - 32);
                    y[yo + l + 32] = d * src.get(ValueLayout.JAVA_BYTE, sc + s + 2) * ((hi & 0xF | (h >>> 2 & 3) << 4) - 32);
                    y[yo + l + 64] = d * src.get(ValueLayout.JAVA_BYTE, sc + s + 4) * ((lo >>> 4 | (h >>> 4 & 3) << 4) - 32);
                    y[yo + l + 96] = d * src.get(ValueLayout.JAVA_BYTE, sc + s + 6) * ((hi >>> 4 | (h >>> 6 & 3) << 4) - 32);
                }
            }
        }
    }
}
