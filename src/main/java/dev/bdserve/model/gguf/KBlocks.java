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

    // ---- reference quantisers (ggml's quantize_row_q4_K_ref, _q5_K_ref, _q6_K_ref: no importance weights) ----

    /**
     * ggml's {@code nearest_int}: adds 1.5·2^23 so that the float addition rounds to the nearest integer (ties to
     * even) and reads it off the mantissa; meaningful for |f| < 2^22, and reproduced bit for bit beyond.
     */
    static int nearestInt(float f) {
        return (Float.floatToRawIntBits(f + 12582912f) & 0x007FFFFF) - 0x00400000;
    }

    /**
     * {@code s + t} as ggml's {@code s += t} computes it on x86-64 when both are NaN: {@code s}'s NaN (its payload
     * can come from the input and reach a stored scale through {@code nearestInt}), where HotSpot may add either
     * way round.
     */
    private static float acc(float s, float t) { return s != s ? s : s + t; }

    /** ggml's threshold below which a group's largest magnitude counts as all zeros. */
    private static final float GROUP_MAX_EPS = 1e-15f;

    /**
     * ggml's {@code make_qkx2_quants} on 32 weights at {@code x[xo..]}: an asymmetric fit {@code x ≈ scale·L − min}
     * with L in 0..nmax, minimising the weighted squared error over {@code nstep + 1} trial scales around
     * {@code nmax/(max − min)}. Writes the codes to {@code L[lo..lo+32)}, returns {@code scale} and stores
     * {@code min} (as ggml's {@code the_min}, negated) in {@code out[0]}.
     */
    private static float makeQkx2(int nmax, float[] x, int xo, float[] w, byte[] L, int lo, byte[] aux,
                                  float rmin, float rdelta, int nstep, float[] out) {
        final int n = 32;
        float min = x[xo], max = x[xo];
        float sumW = w[0], sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            float v = x[xo + i];
            if (v < min) min = v;
            if (v > max) max = v;
            sumW = acc(sumW, w[i]);
            sumX = acc(sumX, w[i] * v);
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            out[0] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
            L[lo + i] = (byte) l;
            float diff = scale * l + min - x[xo + i];
            bestError = acc(bestError, w[i] * (diff * diff));
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
                aux[i] = (byte) l;
                float wl = w[i] * l;
                sumL = acc(sumL, wl);
                sumL2 = acc(sumL2, wl * l);
                sumXL = acc(sumXL, wl * x[xo + i]);
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float err = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * aux[i] + thisMin - x[xo + i];
                    err = acc(err, w[i] * (diff * diff));
                }
                if (err < bestError) {
                    System.arraycopy(aux, 0, L, lo, n);
                    bestError = err;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        out[0] = -min;
        return scale;
    }

    /**
     * The shared part of Q4_K and Q5_K: per 32-weight sub-block an asymmetric fit ({@link #makeQkx2}, weighted by
     * {@code rms + |x|}), the eight scales and mins quantised to 6 bits under fp16 super-scales {@code d} and
     * {@code dmin} (written at {@code at}, the 12 packed bytes at {@code at + 4}), then every weight re-coded
     * against the rounded scales. Leaves the 256 codes in {@code L}.
     */
    private static void fitScaleMin(float[] x, int xo, int nmax, float rmin, int nstep, MemorySegment dst, long at, byte[] L, Scratch t) {
        float[] scales = t.scales, mins = t.mins, w = t.w, out = t.out;
        byte[] aux = t.aux;
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 = acc(sumX2, x[xo + 32 * j + l] * x[xo + 32 * j + l]);
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) w[l] = avX + Math.abs(x[xo + 32 * j + l]);
            scales[j] = makeQkx2(nmax, x, xo + 32 * j, w, L, 32 * j, aux, rmin, 0.1f, nstep, out);
            mins[j] = out[0];
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        byte[] packed = t.packed;
        java.util.Arrays.fill(packed, (byte) 0);
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF);
            int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
            if (j < 4) {
                packed[j] = (byte) ls;
                packed[j + 4] = (byte) lm;
            } else {
                packed[j + 4] = (byte) (ls & 0xF | (lm & 0xF) << 4);
                packed[j - 4] |= (byte) ((ls >> 4) << 6);
                packed[j] |= (byte) ((lm >> 4) << 6);
            }
        }
        short dh = GgmlCodec.floatToHalf(maxScale / 63f), mh = GgmlCodec.floatToHalf(maxMin / 63f);
        dst.set(HALF, at, dh);
        dst.set(HALF, at + 2, mh);
        MemorySegment.copy(packed, 0, dst, ValueLayout.JAVA_BYTE, at + 4, 12);
        MemorySegment ps = MemorySegment.ofArray(packed);
        float d0 = halfToFloat(dh), m0 = halfToFloat(mh);
        for (int j = 0; j < 8; j++) {
            int sm = scaleMin(ps, 0, j);
            float d = d0 * (sm & 0xFF);
            if (d == 0f) continue;
            float dm = m0 * (sm >>> 8);
            for (int i = 0; i < 32; i++) {
                int l = nearestInt((x[xo + 32 * j + i] + dm) / d);
                L[32 * j + i] = (byte) Math.max(0, Math.min(nmax, l));
            }
        }
    }

    /** Work arrays of one {@link #fitScaleMin} caller, reused over its super-blocks. */
    private static final class Scratch {
        final float[] scales = new float[8], mins = new float[8], w = new float[32], out = new float[1];
        final byte[] aux = new byte[32], packed = new byte[12];
    }

    /** {@code quantize_row_q4_K_ref}: 4-bit codes, 20 trial scales from nmax − 1 in steps of 0.1 (layout as {@link #dequantizeQ4_K}). */
    static void quantizeQ4_K(float[] x, int xo, int n, MemorySegment dst, long at) {
        byte[] L = new byte[QK_K];
        Scratch t = new Scratch();
        for (int b = 0; b < n / QK_K; b++, xo += QK_K, at += 144) {
            fitScaleMin(x, xo, 15, -1f, 20, dst, at, L, t);
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                    dst.set(ValueLayout.JAVA_BYTE, at + 16 + 32L * g + l, (byte) (L[64 * g + l] | L[64 * g + 32 + l] << 4));
        }
    }

    /** {@code quantize_row_q5_K_ref}: 5-bit codes, 15 trial scales from nmax − 0.5 in steps of 0.1 (layout as {@link #dequantizeQ5_K}). */
    static void quantizeQ5_K(float[] x, int xo, int n, MemorySegment dst, long at) {
        byte[] L = new byte[QK_K], qh = new byte[32];
        Scratch t = new Scratch();
        for (int b = 0; b < n / QK_K; b++, xo += QK_K, at += 176) {
            fitScaleMin(x, xo, 31, -0.5f, 15, dst, at, L, t);
            java.util.Arrays.fill(qh, (byte) 0);
            for (int g = 0; g < 4; g++)
                for (int j = 0; j < 32; j++) {
                    int l1 = L[64 * g + j], l2 = L[64 * g + 32 + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= (byte) (1 << 2 * g); }
                    if (l2 > 15) { l2 -= 16; qh[j] |= (byte) (2 << 2 * g); }
                    dst.set(ValueLayout.JAVA_BYTE, at + 48 + 32L * g + j, (byte) (l1 | l2 << 4));
                }
            MemorySegment.copy(qh, 0, dst, ValueLayout.JAVA_BYTE, at + 16, 32);
        }
    }

    /**
     * ggml's {@code make_qx_quants} with {@code rmse_type} 1 and no importance weights, on 16 weights: a symmetric
     * fit {@code x ≈ scale·(L − nmax)} weighted by x², trying 18 scales around {@code nmax/max}. Writes the codes
     * (0..2·nmax−1) to {@code L[lo..lo+16)} and returns the scale.
     */
    private static float makeQx(int nmax, float[] x, int xo, byte[] L, int lo) {
        final int n = 16;
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) { amax = ax; max = x[xo + i]; }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
            L[lo + i] = (byte) (l + nmax);
            float w = v * v;
            sumlx = acc(sumlx, w * v * l);
            suml2 = acc(suml2, w * l * l);
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++) {
                float v = x[xo + i];
                int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
                float w = v * v;
                sumlx = acc(sumlx, w * v * l);
                suml2 = acc(suml2, w * l * l);
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++)
                    L[lo + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i]))));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /**
     * {@code quantize_row_q6_K_ref}: per 16-weight sub-block a symmetric 6-bit fit ({@link #makeQx}), the 16
     * scales quantised to int8 under an fp16 super-scale (the largest in magnitude maps to −128, clamped to 127),
     * then every weight re-coded against the rounded scales (layout as {@link #dequantizeQ6_K}).
     */
    static void quantizeQ6_K(float[] x, int xo, int n, MemorySegment dst, long at) {
        byte[] L = new byte[QK_K], sc = new byte[16], block = new byte[210];
        float[] scales = new float[16];
        for (int b = 0; b < n / QK_K; b++, xo += QK_K, at += 210) {
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++) {
                float s = makeQx(32, x, xo + 16 * ib, L, 16 * ib);
                scales[ib] = s;
                if (Math.abs(s) > maxAbsScale) { maxAbsScale = Math.abs(s); maxScale = s; }
            }
            java.util.Arrays.fill(block, (byte) 0);
            if (maxAbsScale < GROUP_MAX_EPS) {                       // all zeros, d = +0
                MemorySegment.copy(block, 0, dst, ValueLayout.JAVA_BYTE, at, 210);
                continue;
            }
            float iscale = -128f / maxScale;
            short dh = GgmlCodec.floatToHalf(1 / iscale);
            for (int ib = 0; ib < 16; ib++) sc[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
            float d0 = halfToFloat(dh);
            for (int j = 0; j < 16; j++) {
                float d = d0 * sc[j];
                if (d == 0f) continue;
                for (int i = 0; i < 16; i++) {
                    int l = Math.max(-32, Math.min(31, nearestInt(x[xo + 16 * j + i] / d)));
                    L[16 * j + i] = (byte) (l + 32);
                }
            }
            for (int half = 0; half < 2; half++) {
                int j = 128 * half, ql = 64 * half, qh = 128 + 32 * half;
                for (int l = 0; l < 32; l++) {
                    int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                    block[ql + l] = (byte) (q1 & 0xF | (q3 & 0xF) << 4);
                    block[ql + l + 32] = (byte) (q2 & 0xF | (q4 & 0xF) << 4);
                    block[qh + l] = (byte) (q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
                }
            }
            System.arraycopy(sc, 0, block, 192, 16);
            MemorySegment.copy(block, 0, dst, ValueLayout.JAVA_BYTE, at, 208);
            dst.set(HALF, at + 208, dh);
        }
    }
}
