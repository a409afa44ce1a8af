package dev.bdserve.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The Q8_0 weight's vector products against its fp64 scalar twin, across shapes, token counts, tails and threads: rows
 * across whole and partial tiles, columns across whole and partial panels, token counts across the kernel's slots.
 */
class Q8MatrixTest {
    static Parallel pool;

    @BeforeAll static void start() { pool = new SpinPool(3); }
    @AfterAll static void stop() { pool.close(); }

    /** Random quants over the whole int8 range (extremes included) and fp16 scales from tiny to large. */
    static Q8Matrix random(int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] q = new byte[rows * cols];
        for (int i = 0; i < q.length; i++) q[i] = (byte) (i % 97 == 0 ? (i % 2 == 0 ? -128 : 127) : r.nextInt(256) - 128);
        short[] d = new short[rows * cols / Q8Matrix.BLOCK];
        for (int i = 0; i < d.length; i++) d[i] = Float.floatToFloat16((float) (Math.pow(10, r.nextDouble(-4, 0.5)) * (r.nextBoolean() ? 1 : -1)));
        return new Q8Matrix(rows, cols, q, d);
    }

    static float[] activations(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    static Stream<Arguments> shapes() {
        List<Arguments> a = new ArrayList<>();
        for (int rows : new int[]{1, 3, 4, 7, 16, 33, 70})
            for (int cols : new int[]{32, 64, 96, 160, 512})
                for (int T : new int[]{1, 2, 5})
                    a.add(Arguments.of(rows, cols, T));
        for (int rows : new int[]{64, 130})                              // tile edges, several kernel calls per tile
            for (int T : new int[]{13, 40})
                a.add(Arguments.of(rows, 96, T));
        for (int rows : new int[]{32, 40, 100})                          // whole and partial tiles; panels of KC
            for (int cols : new int[]{640, 1056})                        // columns and a tail panel of one block
                for (int T : new int[]{4, 6, 7, 16})                     // idle slots, kernel full, one past, two calls and idle
                    a.add(Arguments.of(rows, cols, T));
        return a.stream();
    }

    @ParameterizedTest(name = "{0}x{1} T={2}")
    @MethodSource("shapes")
    void vectorProductsMatchTheScalarTwin(int rows, int cols, int T) {
        Q8Matrix w = random(rows, cols, 31L * rows + cols);
        float[] x = activations(T * cols, rows + 7L * cols + T);
        float[] want = new float[T * rows], serial = new float[T * rows], threaded = new float[T * rows];
        w.matmulScalar(x, T, want);
        w.matmul(x, T, serial, Parallel.serial());
        w.matmul(x, T, threaded, pool);
        float[] row = new float[cols];
        for (int o = 0; o < rows; o++) {
            w.row(o, row, 0);
            for (int t = 0; t < T; t++) {
                double mag = 0;                                          // Σ|w·x|: the scale of fp32 rounding in the sum
                for (int i = 0; i < cols; i++) mag += Math.abs((double) row[i] * x[t * cols + i]);
                double tol = 1e-6 * mag + 1e-30;
                assertEquals(want[t * rows + o], serial[t * rows + o], tol, "row " + o + " token " + t);
                assertEquals(want[t * rows + o], threaded[t * rows + o], tol, "threaded, row " + o + " token " + t);
            }
        }
    }

    /** A token's product has the same bits whatever the batch around it: one token alone excepted, every path sums in one order. */
    @ParameterizedTest(name = "{0}x{1}")
    @org.junit.jupiter.params.provider.CsvSource({"40,96", "70,640", "33,1056"})
    void aTokensProductDoesNotDependOnItsBatch(int rows, int cols) {
        Q8Matrix w = random(rows, cols, 7L * rows + cols);
        float[] x = activations(16 * cols, rows + cols);                 // 16 tokens
        float[] all = new float[16 * rows];
        w.matmul(x, 16, all, pool);
        for (int T : new int[]{2, 3, 4, 5, 7, 13}) {
            float[] y = new float[T * rows];
            w.matmul(java.util.Arrays.copyOf(x, T * cols), T, y, Parallel.serial());
            assertArrayEquals(java.util.Arrays.copyOf(all, T * rows), y, "the first " + T + " tokens alone");
        }
    }

    @Test
    void rowsAreScaleTimesQuant() {
        Q8Matrix w = random(3, 64, 5);
        float[] r = new float[64];
        w.row(2, r, 0);
        for (int i = 0; i < 64; i++) assertEquals(w.scale(2, i / 32) * w.quant(2, i), r[i]);
        assertEquals(3 * 64 + 4 * 3 * 2, w.bytes());                 // quants and fp32 scales
        assertEquals("q8_0", w.format());
    }

    @Test
    void slicesAndStacksKeepTheirRows() {
        Q8Matrix a = random(5, 64, 1), b = random(3, 64, 2);
        Q8Matrix ab = Q8Matrix.concatRows(a, b), mid = ab.sliceRows(4, 6);
        float[] x = activations(64, 3), y = new float[2], want = new float[8];
        ab.matmulScalar(x, 1, want);
        mid.matmulScalar(x, 1, y);
        assertArrayEquals(new float[]{want[4], want[5]}, y);
    }

    @Test
    void refusesShapesThatAreNotWholeBlocks() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Q8Matrix(2, 48, new byte[96], new short[3]));
        assertTrue(e.getMessage().contains("multiple of 32"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Q8Matrix(2, 64, new byte[127], new short[4]));
        assertThrows(IllegalArgumentException.class, () -> random(2, 64, 1).matmul(new float[63], 1, new float[2], Parallel.serial()));
    }
    @ParameterizedTest(name = "{0}x{1} tiles [{2}, {3})")
    @org.junit.jupiter.params.provider.CsvSource({"1,32,0,1", "33,64,0,2", "33,64,1,2", "100,96,1,4", "64,160,0,2", "70,1056,2,3"})
    void tilesDequantizeToBf16AsTheScalarTwinAndTheRows(int rows, int cols, int from, int to) {
        Q8Matrix w = random(rows, cols, 7L * rows + cols);
        int tile = Q8Matrix.tileRows();
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            long bytes = 2L * (to - from) * cols * tile;
            var want = a.allocate(bytes);
            var got = a.allocate(bytes);
            w.tilesToBf16Scalar(from, to, want);
            w.tilesToBf16(from, to, got);
            assertEquals(-1, want.mismatch(got), "vector and scalar bf16 tiles differ");
            float[] row = new float[cols];
            for (int t = from; t < to; t++)
                for (int r = 0; r < tile; r++) {
                    int o = t * tile + r;
                    if (o < rows) w.row(o, row, 0);
                    else java.util.Arrays.fill(row, 0f);                   // padding rows of the last tile are zero
                    for (int k = 0; k < cols; k++)
                        assertEquals(Numerics.floatToBf16(row[k]), got.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED,
                                2L * ((((long) (t - from) * cols / 16 + k / 16) * 8 + (k % 16) / 2) * 64 + 2L * r + k % 2)), "row " + o + " col " + k);
                }
        }
        assertThrows(IllegalArgumentException.class, () -> w.tilesToBf16(0, w.tiles() + 1, java.lang.foreign.MemorySegment.ofArray(new byte[0])));
    }
}
