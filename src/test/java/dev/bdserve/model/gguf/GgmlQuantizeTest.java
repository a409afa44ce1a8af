package dev.bdserve.model.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.function.IntToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link GgmlCodec#quantize} against ggml's {@code from_float_ref} of the prebuilt libggml-base, byte for byte:
 * random rows of many shapes and scales (seeded), and extreme rows: zeros, signed zeros, constants, spikes, ties
 * of the rounding, magnitudes whose scale overflows fp16 or is subnormal or whose reciprocal overflows, and rows
 * holding infinities and NaNs.
 */
class GgmlQuantizeTest {
    /** Magnitudes of the random rows: subnormal, tiny, ordinary, near fp16's limit, beyond it, near float's. */
    static final double[] SCALES = {1e-42, 1e-39, 1e-30, 1e-6, 1e-3, 0.02, 1, 7.5, 300, 6e4, 6.6e4, 5.3e5, 8.4e6, 1e12, 1e37, 3e38};

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"})
    void ggmlHasAReferenceQuantiser(GgmlType t) {
        assertTrue(GgmlCodec.canQuantize(t));
        assertNotNull(GgmlReference.get().traits(t).fromFloatRef());
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"})
    void randomRowsMatchGgml(GgmlType t) {
        for (int seed = 0; seed < 400; seed++) {
            Random r = new Random(seed * 104729L + t.id);
            int blocks = 1 + r.nextInt(t.quantized() ? 9 : 200);
            float[] x = new float[blocks * t.blockSize];
            for (int b = 0; b < blocks; b++) fill(x, b * t.blockSize, t.blockSize, r);
            assertSameAsGgml(t, x, r, "seed " + seed);
        }
    }

    /** One block's worth (or a few values for F16 and BF16, repeated) of each extreme row, all in one long row. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"})
    void extremeRowsMatchGgml(GgmlType t) {
        List<float[]> rows = extremeRows();
        for (int i = 0; i < rows.size(); i++) assertSameAsGgml(t, rows.get(i), new Random(i), "extreme row " + i + " " + Arrays.toString(rows.get(i)));
        float[] all = new float[rows.size() * 32];
        for (int i = 0; i < rows.size(); i++) System.arraycopy(rows.get(i), 0, all, 32 * i, 32);
        assertSameAsGgml(t, all, new Random(-1), "all extreme rows in one");
    }

    /**
     * F16 and BF16 around every one of their values: the value, its float neighbours, the ties halfway to the
     * next value and their neighbours; plus random bit patterns (NaNs included).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "BF16"})
    void halfRoundingMatchesGgmlAroundEveryValue(GgmlType t) {
        float[] x = new float[65536 * 8 + (1 << 20)];
        int k = 0;
        for (int h = 0; h < 65536; h++) {
            int bits = t == GgmlType.F16 ? Float.floatToRawIntBits(Float.float16ToFloat((short) h)) : h << 16;
            // the tie between this value and the next one up (for F16 normals: 13 dropped bits, half is 0x1000)
            int tie = bits + (t == GgmlType.BF16 || (h & 0x7C00) != 0 ? (t == GgmlType.F16 ? 0x1000 : 0x8000) : 0);
            for (int v : new int[] {bits, bits - 1, bits + 1, tie, tie - 1, tie + 1, tie + 2, ~bits})
                x[k++] = Float.intBitsToFloat(v);
        }
        Random r = new Random(t.id);
        while (k < x.length) x[k++] = Float.intBitsToFloat(r.nextInt());
        assertSameAsGgml(t, x, r, "values around every " + t);
    }

    /** The extreme rows quantised thousands of times, so that the JIT's optimised code is checked too. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"})
    void compiledCodeStillMatchesGgml(GgmlType t) {
        List<float[]> rows = extremeRows();
        float[] x = new float[rows.size() * 32];
        for (int i = 0; i < rows.size(); i++) System.arraycopy(rows.get(i), 0, x, 32 * i, 32);
        byte[] want = GgmlReference.get().fromFloatRef(t, x), got = new byte[want.length];
        for (int run = 0; run < 3000; run++) {
            GgmlCodec.quantize(t, x, 0, x.length, got, 0);
            if (!Arrays.equals(got, want)) assertArrayEquals(want, got, t + " run " + run);
        }
    }

    @Test
    void f32IsARawCopy() {
        float[] x = {0f, -0f, Float.MIN_VALUE, Float.intBitsToFloat(0x7F80_0001), Float.NaN, -1.5f};
        byte[] out = new byte[4 * x.length];
        GgmlCodec.quantize(GgmlType.F32, x, 0, x.length, out, 0);
        float[] back = MemorySegment.ofArray(out).toArray(GgmlCodec.F32);
        for (int i = 0; i < x.length; i++) assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(back[i]));
    }

    @Test
    void argumentsAreChecked() {
        float[] x = new float[64];
        assertThrows(IllegalArgumentException.class, () -> GgmlCodec.quantize(GgmlType.Q8_0, x, 0, 40, new byte[68], 0));
        assertThrows(IndexOutOfBoundsException.class, () -> GgmlCodec.quantize(GgmlType.Q8_0, x, 1, 64, new byte[68], 0));
        assertThrows(IndexOutOfBoundsException.class, () -> GgmlCodec.quantize(GgmlType.Q8_0, x, 0, 64, new byte[68], 1));
        assertThrows(IllegalArgumentException.class, () -> GgmlCodec.quantize(GgmlType.Q4_K, new float[512], 0, 300, new byte[288], 0));
    }

    /**
     * Quantising then dequantising stays within half a step of the block's scale (a sanity check of the pair);
     * Q4_0 and Q5_0 within a whole step, since their extreme weight takes code −8 (−16) and a weight of the other
     * sign and nearly the same magnitude is clamped to +7 (+15).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"})
    void roundTripIsWithinHalfAStep(GgmlType t) {
        Random r = new Random(t.id);
        float[] x = new float[32 * 64];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        byte[] q = new byte[(int) t.bytes(x.length)];
        GgmlCodec.quantize(t, x, 0, x.length, q, 0);
        float[] y = new float[x.length];
        GgmlCodec.dequantize(t, MemorySegment.ofArray(q), 0, y, 0, x.length);
        for (int b = 0; b < x.length / 32; b++) {
            float d = Math.abs(Float.float16ToFloat(MemorySegment.ofArray(q).get(GgmlCodec.HALF, (long) b * t.blockBytes)));
            float slack = t == GgmlType.Q4_1 || t == GgmlType.Q5_1 ? 2e-3f : 1e-3f; // the fp16 rounding of d and m
            float steps = t == GgmlType.Q4_0 || t == GgmlType.Q5_0 ? 1f : 0.5f;
            for (int i = 32 * b; i < 32 * b + 32; i++)
                assertTrue(Math.abs(x[i] - y[i]) <= d * (steps + slack) + slack, t + " weight " + i + ": " + x[i] + " -> " + y[i] + ", d " + d);
        }
    }

    /** Fills {@code n} values at {@code at} with one of several shapes, at a random magnitude of {@link #SCALES}. */
    static void fill(float[] x, int at, int n, Random r) {
        double s = SCALES[r.nextInt(SCALES.length)], offset = r.nextGaussian() * s * 4, pow2 = Math.scalb(1.0, r.nextInt(41) - 20);
        IntToDoubleFunction shape = switch (r.nextInt(6)) {
            case 0 -> i -> r.nextGaussian() * s;
            case 1 -> i -> r.nextGaussian() * s + offset;                          // off-centre: the min of Q4_1/Q5_1
            case 2 -> i -> (r.nextDouble() * 2 - 1) * s;
            case 3 -> i -> r.nextInt(10) == 0 ? r.nextGaussian() * s : 0;         // sparse, exact zeros
            case 4 -> i -> (r.nextInt(33) - 16) * 0.5 * pow2;                    // a grid of halves: rounding ties
            default -> i -> (r.nextInt(255) - 127 + (r.nextBoolean() ? 0.5 : 0)) * pow2; // Q8_0's grid and its ties
        };
        for (int i = 0; i < n; i++) x[at + i] = (float) shape.applyAsDouble(i);
    }

    /** 32-value rows at the edges of the quantisers' arithmetic. */
    static List<float[]> extremeRows() {
        List<float[]> rows = new ArrayList<>();
        float inf = Float.POSITIVE_INFINITY, nan = Float.NaN, max = Float.MAX_VALUE;
        for (float c : new float[] {0f, -0f, 1f, -1f, 65504f, -65504f, 1e-8f, Float.MIN_VALUE, -Float.MIN_NORMAL, max, -max, inf, -inf, nan})
            rows.add(constant(c));
        for (float spike : new float[] {1f, -1f, 3e38f, -1e-40f, 8.4e6f, -5.25e5f, inf, -inf, nan})
            for (int at : new int[] {0, 17, 31}) {
                float[] row = new float[32];
                row[at] = spike;
                rows.add(row);
            }
        // magnitude ties: the first of +m and -m is the one Q4_0/Q5_0 scale by
        rows.add(row(i -> i == 3 ? 5 : i == 9 ? -5 : i % 4));
        rows.add(row(i -> i == 3 ? -5 : i == 9 ? 5 : i % 4));
        // rounding ties at every step of Q4_0 (max = -8 gives d = 1), Q5_0 (d = 1), Q8_0 (amax = 127) and the min types
        rows.add(row(i -> i == 0 ? -8 : (i % 16) - 8 + 0.5));
        rows.add(row(i -> i == 0 ? -16 : (i % 32) - 16 + 0.5));
        rows.add(row(i -> i == 0 ? 127 : (i * 8) - 127 + 0.5));
        rows.add(row(i -> i == 0 ? 0 : i == 1 ? 15 : i % 16 - 0.5));
        rows.add(row(i -> i == 0 ? 0 : i == 1 ? 31 : i - 0.5));
        rows.add(row(i -> i % 2 == 0 ? max : -max));                   // max − min overflows to inf
        rows.add(row(i -> i % 2 == 0 ? 1e-38 : -1e-39));               // subnormal d, reciprocal near overflow
        rows.add(row(i -> i % 2 == 0 ? 1e-40 : -3e-41));               // reciprocal of d overflows
        rows.add(row(i -> (i - 16) * 1e-45));                          // steps of the smallest subnormal
        rows.add(row(i -> 1e4 + i * 1e-3));                            // tiny spread on a large offset
        rows.add(row(i -> 65504 - i * 0.01));                          // near fp16's largest value
        rows.add(row(i -> i == 5 ? nan : i));                          // NaN in the middle
        rows.add(row(i -> i == 31 ? nan : i));                         // NaN last: ggml's MAX keeps it in Q8_0
        rows.add(row(i -> i == 0 ? nan : -i));                         // NaN first
        rows.add(row(i -> i == 0 ? -nan(0x12345) : i == 7 ? inf : i)); // negative NaN with a payload, and +inf
        rows.add(row(i -> i % 3 == 0 ? inf : i % 3 == 1 ? -inf : i)); // both infinities
        rows.add(row(i -> i == 4 ? -inf : -i));
        return rows;
    }

    static float nan(int payload) { return Float.intBitsToFloat(0x7FC0_0000 | payload); }

    static float[] constant(float c) {
        float[] row = new float[32];
        Arrays.fill(row, c);
        return row;
    }

    static float[] row(IntToDoubleFunction f) {
        float[] row = new float[32];
        for (int i = 0; i < 32; i++) row[i] = (float) f.applyAsDouble(i);
        return row;
    }

    /**
     * Quantises {@code x} with ggml and with {@link GgmlCodec} (into a byte array, a heap or a native segment, at a
     * random offset, from a random offset of a larger array) and fails at the first block whose bytes differ.
     */
    static void assertSameAsGgml(GgmlType t, float[] x, Random r, String what) {
        byte[] want = GgmlReference.get().fromFloatRef(t, x);
        int srcOffset = r.nextInt(5), dstOffset = r.nextInt(9);
        float[] src = new float[srcOffset + x.length + 2];
        System.arraycopy(x, 0, src, srcOffset, x.length);
        byte[] got;
        try (Arena arena = Arena.ofConfined()) {
            switch (r.nextInt(3)) {
                case 0 -> {
                    byte[] out = new byte[dstOffset + want.length + 3];
                    GgmlCodec.quantize(t, src, srcOffset, x.length, out, dstOffset);
                    got = Arrays.copyOfRange(out, dstOffset, dstOffset + want.length);
                }
                default -> {
                    MemorySegment out = r.nextBoolean() ? MemorySegment.ofArray(new byte[dstOffset + want.length])
                            : arena.allocate(dstOffset + want.length);
                    GgmlCodec.quantize(t, src, srcOffset, x.length, out, dstOffset);
                    got = out.asSlice(dstOffset).toArray(ValueLayout.JAVA_BYTE);
                }
            }
        }
        for (int b = 0; b < want.length / t.blockBytes; b++) {
            int from = b * t.blockBytes, to = from + t.blockBytes;
            if (!Arrays.equals(got, from, to, want, from, to)) {
                HexFormat hex = HexFormat.of();
                fail(String.format("%s %s: block %d: got %s, ggml %s; input %s", t, what, b, hex.formatHex(got, from, to),
                        hex.formatHex(want, from, to), Arrays.toString(Arrays.copyOfRange(x, b * t.blockSize, (b + 1) * t.blockSize))));
            }
        }
        assertArrayEquals(want, got);
    }
}
