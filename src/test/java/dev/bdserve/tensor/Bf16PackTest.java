package dev.bdserve.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;
import static org.junit.jupiter.api.Assertions.*;

/** bf16 packing (the native products' operands): the vector routines give their scalar twins' bits at every length. */
class Bf16PackTest {
    /** Values of every kind: normal, ties to even, subnormal, huge (rounding to Inf), ±0, ±Inf and NaNs with payloads. */
    static float[] values(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = switch (r.nextInt(10)) {
                case 0 -> Float.intBitsToFloat(r.nextInt());                                  // any bits, NaNs included
                case 1 -> Float.intBitsToFloat((r.nextInt() & 0xFFFF0000) | 0x8000);          // exact ties
                case 2 -> Float.MIN_VALUE * r.nextInt(1, 1 << 20);                            // subnormals
                case 3 -> r.nextBoolean() ? Float.MAX_VALUE : -Float.POSITIVE_INFINITY;
                case 4 -> Float.intBitsToFloat(0x7F800000 | r.nextInt(1, 1 << 23) | (r.nextBoolean() ? 0x80000000 : 0)); // NaN payloads
                case 5 -> r.nextBoolean() ? 0f : -0f;
                default -> (float) (r.nextGaussian() * Math.pow(10, r.nextInt(-6, 6)));
            };
        }
        return x;
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000})
    void vectorPackingGivesTheScalarBits(int n) {
        float[] x = values(n + 5, n);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment want = a.allocate(2L * n + 6), got = a.allocate(2L * n + 6);
            Bf16Pack.floatsScalar(x, 5, n, want, 2);
            Bf16Pack.floats(x, 5, n, got, 2);
            for (int i = 0; i < n; i++) {
                short w = want.get(JAVA_SHORT_UNALIGNED, 2 + 2L * i), g = got.get(JAVA_SHORT_UNALIGNED, 2 + 2L * i);
                assertEquals(w, g, "value " + i + " = " + x[5 + i] + " (bits " + Integer.toHexString(Float.floatToRawIntBits(x[5 + i])) + ")");
                assertEquals(Numerics.floatToBf16(x[5 + i]), w);
            }
        }
    }

    @Test
    void roundsToNearestEvenAndKeepsNaN() {
        float[] x = {Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000), Float.intBitsToFloat(0x3F808001), Float.NaN,
                Float.intBitsToFloat(0xFFFFFFFF), Float.intBitsToFloat(0x7F7FFFFF)};
        short[] want = {0x3F80, 0x3F82, 0x3F81, 0x7FC0, (short) 0xFFFF, 0x7F80};
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(2L * 32);
            float[] padded = new float[32];
            System.arraycopy(x, 0, padded, 0, x.length);
            Bf16Pack.floats(padded, 0, 32, s, 0);
            for (int i = 0; i < x.length; i++) assertEquals(want[i], s.get(JAVA_SHORT_UNALIGNED, 2L * i), "value " + i);
            assertTrue(Float.isNaN(Numerics.bf16ToFloat(s.get(JAVA_SHORT_UNALIGNED, 8))), "an all-ones NaN stays NaN");
        }
    }

    @Test
    void rowsPackWhatRowWidens() {
        Q8Matrix w = Q8MatrixTest.random(37, 96, 5);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(2L * 10 * 96);
            Bf16Pack.rows(w, 20, 30, s, new float[96]);
            float[] row = new float[96];
            for (int r = 20; r < 30; r++) {
                w.row(r, row, 0);
                for (int c = 0; c < 96; c++)
                    assertEquals(Numerics.floatToBf16(row[c]), s.get(JAVA_SHORT_UNALIGNED, 2L * ((r - 20) * 96 + c)), "row " + r + " col " + c);
            }
        }
    }

    @Test
    void blockedPairsPlaceEveryElementAndZeroThePaddingRows() {
        int rows = 37, cols = 96;
        short[] bits = new short[rows * cols];
        for (int i = 0; i < bits.length; i++) bits[i] = (short) (i * 7 + 1);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(2L * 64 * cols + 8);
            for (int t = 0; t < 2; t++) Bf16Pack.blockedPairs(bits, rows, cols, t, s, 8 + 2L * t * 32 * cols);
            for (int t = 0; t < 2; t++)
                for (int r = 0; r < 32; r++)
                    for (int k = 0; k < cols; k++) {
                        long at = 8 + 2L * t * 32 * cols + 2L * ((k / 2) * 64 + 2 * r + k % 2);
                        int row = 32 * t + r;
                        assertEquals(row < rows ? bits[row * cols + k] : 0, s.get(JAVA_SHORT_UNALIGNED, at), "row " + row + " col " + k);
                    }
        }
        assertThrows(IllegalArgumentException.class, () -> Bf16Pack.blockedPairs(new short[40], 1, 40, 0, MemorySegment.ofArray(new byte[160]), 0));
        // oneDNN pads a 16-column remainder to a whole 32-column block: such matrices stay row-major
        assertThrows(IllegalArgumentException.class, () -> Bf16Pack.blockedPairs(new short[48], 1, 48, 0, MemorySegment.ofArray(new byte[4096]), 0));
    }
}
