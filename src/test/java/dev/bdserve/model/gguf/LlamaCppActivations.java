package dev.bdserve.model.gguf;

import dev.bdserve.tensor.Numerics;

/**
 * The activations llama.cpp's CPU backend multiplies a weight of each type with: before a matrix product it converts
 * the fp32 input row to the weight type's dot-product partner (ggml-cpu's {@code vec_dot_type}): F16 for F16, BF16
 * for BF16, 8-bit blocks of 32 with an fp16 scale (Q8_0, Q8_1) for the 32-weight block types, and 8-bit blocks of 256
 * with an fp32 scale (Q8_K) for the K-quants. {@link #round} gives the values such a row stands for, so that a
 * reference forward pass can compute what llama.cpp computes. (Q8_1's stored block sum, itself fp16, is not modelled.)
 */
final class LlamaCppActivations {
    private LlamaCppActivations() {}

    /** {@code row} as llama.cpp's CPU backend presents it to a matrix product with a {@code weight}-typed matrix. */
    static double[] round(GgmlType weight, double[] row) {
        double[] out = new double[row.length];
        float[] x = new float[row.length];
        for (int i = 0; i < x.length; i++) x[i] = (float) row[i];
        switch (weight) {
            case F32 -> { for (int i = 0; i < x.length; i++) out[i] = x[i]; }
            case F16 -> { for (int i = 0; i < x.length; i++) out[i] = Numerics.f16ToFloat(Numerics.floatToF16(x[i])); }
            case BF16 -> { for (int i = 0; i < x.length; i++) out[i] = Numerics.bf16ToFloat(Numerics.floatToBf16(x[i])); }
            case Q4_0, Q5_0, Q8_0, Q4_1, Q5_1 -> blocks32(x, out);
            case Q4_K, Q5_K, Q6_K -> blocks256(x, out);
        }
        return out;
    }

    /** Q8_0 / Q8_1: per 32 values, scale amax/127 stored as fp16, values rounded to nearest (ties to even) of x·127/amax. */
    private static void blocks32(float[] x, double[] out) {
        if (x.length % 32 != 0) throw new IllegalArgumentException("a row of " + x.length + " is not whole 32-blocks");
        for (int b = 0; b < x.length; b += 32) {
            float amax = 0;
            for (int i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]));
            float d = amax / 127f, id = amax != 0 ? 127f / amax : 0f;
            float dh = Numerics.f16ToFloat(Numerics.floatToF16(d));
            for (int i = b; i < b + 32; i++) out[i] = (double) (float) Math.rint(x[i] * id) * dh;
        }
    }

    /** Q8_K: per 256 values, the signed value of largest magnitude m; q = nearest(−127/m · x) capped at 127; scale 1/(−127/m) in fp32. */
    private static void blocks256(float[] x, double[] out) {
        if (x.length % 256 != 0) throw new IllegalArgumentException("a row of " + x.length + " is not whole 256-blocks");
        for (int b = 0; b < x.length; b += 256) {
            float amax = 0, max = 0;
            for (int i = b; i < b + 256; i++)
                if (Math.abs(x[i]) > amax) { amax = Math.abs(x[i]); max = x[i]; }
            if (amax == 0) continue;
            float iscale = -127f / max, d = 1 / iscale;
            for (int i = b; i < b + 256; i++) out[i] = Math.min(127.0, Math.rint(iscale * x[i])) * d;
        }
    }
}
