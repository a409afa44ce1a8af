package dev.bdserve.tensor.quant;

import dev.bdserve.model.gguf.GgmlCodec;
import dev.bdserve.model.gguf.GgmlType;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.RowStack;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tensor.Weight;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every block format's vector kernels against the slow twin, ggml's scalar dequantiser as {@link GgmlCodec} mirrors
 * it bit for bit: decoding equal bit for bit on random blocks (every quant pattern, extreme scales), products equal
 * to an fp64 dot of the twin's weights within fp32 rounding, across shapes, block counts, token counts and threads.
 */
class BlockFormatTest {
    static Parallel pool;

    @BeforeAll static void start() { pool = new SpinPool(3); }
    @AfterAll static void stop() { pool.close(); }

    /** A format under test, its GGUF type and the byte offsets of its fp16 fields within a block. */
    record Case(BlockFormat format, GgmlType type, int... halves) {
        @Override public String toString() { return format.name(); }
    }

    static List<Case> cases() {
        return List.of(
                new Case(BlockFormat.of("q4_0"), GgmlType.Q4_0, 0),
                new Case(BlockFormat.of("q4_1"), GgmlType.Q4_1, 0, 2),
                new Case(BlockFormat.of("q5_0"), GgmlType.Q5_0, 0),
                new Case(BlockFormat.of("q5_1"), GgmlType.Q5_1, 0, 2),
                new Case(BlockFormat.of("q4_k"), GgmlType.Q4_K, 0, 2),
                new Case(BlockFormat.of("q5_k"), GgmlType.Q5_K, 0, 2),
                new Case(BlockFormat.of("q6_k"), GgmlType.Q6_K, 208));
    }

    /**
     * Random blocks: every byte random, then each fp16 field set to a finite scale from 1e-4 to 3 (either sign, or
     * one of the extremes 0, ±65504, a subnormal when {@code extremes}).
     */
    static byte[] randomBlocks(Case c, int n, long seed, boolean extremes) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] b = new byte[n * c.format.blockBytes()];
        r.nextBytes(b);
        short[] special = {0, (short) 0x7BFF, (short) 0xFBFF, 1, (short) 0x8001};
        for (int k = 0; k < n; k++)
            for (int h : c.halves) {
                short v = extremes && r.nextInt(4) == 0 ? special[r.nextInt(special.length)]
                        : Float.floatToFloat16((float) (Math.pow(10, r.nextDouble(-4, 0.5)) * (r.nextBoolean() ? 1 : -1)));
                b[k * c.format.blockBytes() + h] = (byte) v;
                b[k * c.format.blockBytes() + h + 1] = (byte) (v >> 8);
            }
        return b;
    }

    /** The twin's weights of the blocks. */
    static float[] twin(Case c, byte[] blocks, int n) {
        float[] w = new float[n * c.format.blockSize()];
        GgmlCodec.dequantize(c.type, MemorySegment.ofArray(blocks), 0, w, 0, w.length);
        return w;
    }

    /** The case of the format named {@code name}. */
    static Case caseOf(String name) { return cases().stream().filter(k -> k.format.name().equals(name)).findFirst().orElseThrow(); }

    static Stream<Case> formats() { return cases().stream(); }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void decodingEqualsTheScalarTwinBitForBit(Case c) {
        for (boolean extremes : new boolean[]{false, true}) {
            int n = 37;
            byte[] b = randomBlocks(c, n, extremes ? 11 : 12, extremes);
            float[] want = twin(c, b, n), got = new float[want.length + 3];
            c.format.decode(b, 0, got, 3, n);
            for (int i = 0; i < want.length; i++)
                assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[3 + i]),
                        c + " weight " + i + " (block " + i / c.format.blockSize() + "): " + want[i] + " vs " + got[3 + i]);
        }
    }

    /** A QuantMatrix keeps its rows in its format's packed layout: each row decodes bit for bit as the file's. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void packedRowsDecodeEqualTheScalarTwinBitForBit(Case c) {
        for (boolean extremes : new boolean[]{false, true})
            for (int blocks : new int[]{1, 3, 8}) {
                int rows = 5, cols = blocks * c.format.blockSize();
                byte[] b = randomBlocks(c, rows * blocks, 7L * blocks + (extremes ? 1 : 0), extremes);
                float[] want = twin(c, b, rows * blocks), got = new float[cols + 1];
                QuantMatrix w = new QuantMatrix(c.format, rows, cols, b);
                for (int r = 0; r < rows; r++) {
                    w.row(r, got, 1);
                    for (int i = 0; i < cols; i++)
                        assertEquals(Float.floatToIntBits(want[r * cols + i]), Float.floatToIntBits(got[1 + i]),
                                c + " " + blocks + " blocks, row " + r + " weight " + i + ": " + want[r * cols + i] + " vs " + got[1 + i]);
                }
            }
    }

    static Stream<Arguments> shapes() {
        List<Arguments> a = new ArrayList<>();
        for (Case c : cases())                                         // odd and even row counts: kernels pair rows
            for (int rows : new int[]{1, 3, 7, 16, 50})
                for (int blocks : new int[]{1, 2, 3, 5, 8})
                    for (int T : new int[]{1, 2, 5, 17})
                        a.add(Arguments.of(c, rows, blocks, T));
        for (Case c : cases())                                         // panel edges, and the packed GEMM (T > 12)
            for (int rows : new int[]{64, 130})
                a.add(Arguments.of(c, rows, 2, 17));
        for (Case c : cases())                                         // long rows: GEMVs that pass over x in chunks
            for (int blocks : new int[]{17, 33, 40})
                a.add(Arguments.of(c, 5, blocks, 1));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1} rows x {2} blocks T={3}")
    @MethodSource("shapes")
    void productsMatchAnFp64DotOfTheTwin(Case c, int rows, int blocks, int T) {
        int cols = blocks * c.format.blockSize();
        byte[] b = randomBlocks(c, rows * blocks, 31L * rows + blocks, false);
        QuantMatrix w = new QuantMatrix(c.format, rows, cols, b);
        float[] wt = twin(c, b, rows * blocks);                      // [rows, cols]
        float[] x = activations(T * cols, rows + 7L * cols + T);
        assertProductsMatchTheTwin(c, w, wt, x, T);
    }

    /**
     * w's products of the T tokens of x, serial and threaded, each equal to an fp64 dot of the twin's weights wt
     * [rows, cols] within fp32 rounding.
     */
    static void assertProductsMatchTheTwin(Case c, Weight w, float[] wt, float[] x, int T) {
        int rows = w.rows(), cols = w.cols();
        float[] serial = new float[T * rows], threaded = new float[T * rows];
        w.matmul(x, T, serial, Parallel.serial());
        w.matmul(x, T, threaded, pool);
        if (T == 1) x = c.format.gemvInput(x, cols);                 // the GEMV's activations (Q4_K's, Q6_K's quantized)
        for (int o = 0; o < rows; o++)
            for (int t = 0; t < T; t++) {
                double want = 0, mag = 0;                            // Σ|w·x|: the scale of fp32 rounding in the sum
                for (int i = 0; i < cols; i++) {
                    double p = (double) wt[o * cols + i] * x[t * cols + i];
                    want += p;
                    mag += Math.abs(p);
                }
                double tol = 2e-6 * mag + 1e-30;
                assertEquals(want, serial[t * rows + o], tol, c + " row " + o + " token " + t);
                assertEquals(want, threaded[t * rows + o], tol, c + " threaded, row " + o + " token " + t);
            }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void rowsSlicesAndStacksKeepTheirWeights(Case c) {
        int bs = c.format.blockSize();
        byte[] b = randomBlocks(c, 5 * 2, 3, false);
        QuantMatrix w = new QuantMatrix(c.format, 5, 2 * bs, b);
        float[] all = twin(c, b, 10), row = new float[2 * bs];
        w.row(4, row, 0);
        assertArrayEquals(java.util.Arrays.copyOfRange(all, 4 * 2 * bs, 5 * 2 * bs), row);
        Weight mid = w.sliceRows(1, 3);
        mid.row(1, row, 0);
        assertArrayEquals(java.util.Arrays.copyOfRange(all, 2 * 2 * bs, 3 * 2 * bs), row);
        Weight joined = Weight.concatRows(w, mid);
        assertInstanceOf(QuantMatrix.class, joined);
        assertEquals(7, joined.rows());
        joined.row(6, row, 0);
        assertArrayEquals(java.util.Arrays.copyOfRange(all, 2 * 2 * bs, 3 * 2 * bs), row);
        assertEquals(c.format.name(), joined.format());
        assertEquals(5L * 2 * c.format.blockBytes(), w.bytes());
    }

    @Test
    void mixedFormatsStackWithEachPartInItsOwn() {
        List<Case> cs = cases();
        Case a = cs.get(0), b = cs.get(cs.size() - 1);
        int cols = Math.max(a.format.blockSize(), b.format.blockSize());
        QuantMatrix wa = new QuantMatrix(a.format, 3, cols, randomBlocks(a, 3 * cols / a.format.blockSize(), 1, false));
        QuantMatrix wb = new QuantMatrix(b.format, 2, cols, randomBlocks(b, 2 * cols / b.format.blockSize(), 2, false));
        Weight dense = dev.bdserve.tensor.Matrix.ofF32(1, cols, activations(cols, 9));
        Weight s = Weight.concatRows(wa, dense, wb);
        if (a != b) assertInstanceOf(RowStack.class, s);
        assertEquals(6, s.rows());
        float[] x = activations(2 * cols, 4), y = new float[2 * 6], part = new float[2 * 3];
        s.matmul(x, 2, y, pool);
        wa.matmul(x, 2, part, Parallel.serial());
        for (int t = 0; t < 2; t++)
            for (int o = 0; o < 3; o++) assertEquals(part[t * 3 + o], y[t * 6 + o], 1e-4f * (1 + Math.abs(part[t * 3 + o])));
        float[] r = new float[cols], want = new float[cols];
        s.row(5, r, 0);
        wb.row(1, want, 0);
        assertArrayEquals(want, r);
        assertEquals(3, s.sliceRows(2, 5).rows());
    }

    /** Long rows are kept as column strips: the widest whole-block divisor from 1024 to 2048 weights, or none. */
    @Test
    void longRowsSplitIntoStripsOfWholeBlocks() {
        assertEquals(4096, QuantMatrix.stripCols(4096, 256));                  // not long
        assertEquals(2048, QuantMatrix.stripCols(8192, 256));                  // Llama-3.2-1B down_proj
        assertEquals(2048, QuantMatrix.stripCols(14336, 256));                 // Llama-3-8B
        assertEquals(1792, QuantMatrix.stripCols(8960, 256));                  // Qwen2-1.5B: 35 super-blocks, 5 strips
        assertEquals(5632, QuantMatrix.stripCols(5632, 256));                  // 22 super-blocks: no strip of 1024..2048
        assertEquals(1408, QuantMatrix.stripCols(5632, 32));                   // the same row in blocks of 32
        assertEquals(2048, QuantMatrix.stripCols(8192, 32));
        var e = assertThrows(IllegalArgumentException.class,
                () -> new QuantMatrix(BlockFormat.of("q4_0"), 2, 96, new byte[2 * 3 * 18], 64));
        assertTrue(e.getMessage().contains("strips of 64"), e.getMessage());
    }

    static Stream<Arguments> stripShapes() {
        List<Arguments> a = new ArrayList<>();
        for (Case c : cases())                                         // strips of 1 and 2 blocks; rows odd, even, past a grain
            for (int stripBlocks : new int[]{1, 2})
                for (int rows : new int[]{1, 7, 50})
                    for (int T : new int[]{1, 3, 17})
                        a.add(Arguments.of(c, stripBlocks, rows, T));
        return a.stream();
    }

    /**
     * A weight kept as column strips (forced narrow here) multiplies, decodes, slices and stacks as the twin's weights:
     * each strip's partial product is summed into the row's.
     */
    @ParameterizedTest(name = "{0} strips of {1} blocks, {2} rows, T={3}")
    @MethodSource("stripShapes")
    void stripedWeightsMatchTheTwin(Case c, int stripBlocks, int rows, int T) {
        int bs = c.format.blockSize(), blocks = 3 * stripBlocks, cols = blocks * bs;
        byte[] b = randomBlocks(c, rows * blocks, 5L * rows + stripBlocks + T, false);
        QuantMatrix w = new QuantMatrix(c.format, rows, cols, b, stripBlocks * bs);
        assertTrue(w.toString().contains("3 strips"), w.toString());
        float[] wt = twin(c, b, rows * blocks);                      // [rows, cols]
        float[] x = activations(T * cols, rows + 3L * T);
        assertProductsMatchTheTwin(c, w, wt, x, T);
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            w.row(r, row, 0);
            assertArrayEquals(java.util.Arrays.copyOfRange(wt, r * cols, (r + 1) * cols), row, c + " row " + r);
        }
        if (rows < 2) return;
        Weight mid = w.sliceRows(1, rows), joined = Weight.concatRows(mid, w);
        assertInstanceOf(QuantMatrix.class, joined);
        assertEquals(2 * rows - 1, joined.rows());
        for (int r = 0; r < joined.rows(); r++) {
            int src = r < rows - 1 ? r + 1 : r - (rows - 1);
            joined.row(r, row, 0);
            assertArrayEquals(java.util.Arrays.copyOfRange(wt, src * cols, (src + 1) * cols), row, c + " joined row " + r);
        }
        float[] y = new float[2 * rows - 1], one = new float[rows];
        joined.matmul(x, 1, y, pool);
        w.matmul(x, 1, one, Parallel.serial());
        for (int r = 0; r < joined.rows(); r++) {                  // rows pair differently once joined: the sum's
            int src = r < rows - 1 ? r + 1 : r - (rows - 1);        // order may differ, so the bound is fp32 rounding
            double mag = 0;                                          // of Σ|w·x|, not of the result
            for (int i = 0; i < cols; i++) mag += Math.abs((double) wt[src * cols + i] * x[i]);
            assertEquals(one[src], y[r], 4e-6 * mag + 1e-30, c + " joined product " + r);
        }
    }

    /**
     * The integer GEMVs (Q4_K, Q6_K) see each activation within half a step (max|x| / 127 of its group) of its value,
     * a group of zeros as zeros.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"q4_k", "q6_k"})
    void integerGemvActivationsAreQuantizedWithinHalfAStep(String name) {
        BlockFormat f = BlockFormat.of(name);
        int n = 4 * 256, group = f == Q4_K.INSTANCE ? Q4_K.GW : Q6_K.GROUP;
        SplittableRandom r = new SplittableRandom(3);
        for (int trial = 0; trial < 20; trial++) {
            float[] x = new float[n];
            double scale = Math.pow(10, r.nextDouble(-6, 6));
            for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * scale * (i % 97 == 0 ? 30 : 1));
            java.util.Arrays.fill(x, 512, 768, 0f);                           // whole groups of zeros
            float[] seen = f.gemvInput(x, n);
            for (int g0 = 0; g0 < n; g0 += group) {
                float amax = 0;
                for (int i = g0; i < g0 + group; i++) amax = Math.max(amax, Math.abs(x[i]));
                for (int i = g0; i < g0 + group; i++)
                    assertEquals(x[i], seen[i], amax / 127 * 0.5001 + 1e-30, name + " trial " + trial + " value " + i);
            }
            for (int i = 512; i < 768; i++) assertEquals(0f, seen[i]);
        }
    }

    /**
     * The worst case of Q4_K's 16-bit sums: every nibble 15, every activation ±max|x| (each quantized to ±127), all
     * the products of a lane of one sign; the products still equal the twin's on the quantized activations.
     */
    @Test
    void q4kSixteenBitSumsDoNotOverflow() {
        Case c = caseOf("q4_k");
        int rows = 3, blocks = 2, cols = blocks * 256;
        byte[] b = new byte[rows * blocks * 144];
        for (int k = 0; k < rows * blocks; k++) {
            int o = k * 144;
            b[o + 1] = 0x3C;                                                  // d = 1
            for (int j = 0; j < 12; j++) b[o + 4 + j] = (byte) (j < 4 ? 0xFF : j < 8 ? 0 : 0x0F); // scales 63, mins 0
            for (int j = 0; j < 128; j++) b[o + 16 + j] = (byte) 0xFF;
        }
        float[] wt = twin(c, b, rows * blocks);
        for (float sign : new float[]{1, -1}) {
            float[] x = new float[cols];
            java.util.Arrays.fill(x, 2.5f * sign);
            QuantMatrix w = new QuantMatrix(c.format, rows, cols, b);
            float[] y = new float[rows];
            w.matmul(x, 1, y, Parallel.serial());
            for (int o = 0; o < rows; o++) {
                double want = 0;
                for (int i = 0; i < cols; i++) want += (double) wt[o * cols + i] * x[i];
                assertEquals(want, y[o], 1e-5 * Math.abs(want), "row " + o + ", activations " + 2.5f * sign);
                assertEquals(15.0 * 63 * 2.5 * cols * sign, want, 1e-3);
            }
        }
    }

    /**
     * The worst case of Q6_K's 16-bit sums: every quant −32 (or 31), every activation ±max|x| (quantized to ±127), so
     * each short lane adds 8 products of 32·127 (or 31·127) of one sign; the products still equal the twin's.
     */
    @Test
    void q6kSixteenBitSumsDoNotOverflow() {
        Case c = caseOf("q6_k");
        int rows = 3, blocks = 2, cols = blocks * 256;
        for (int fill : new int[]{0, 0xFF}) {                                // q = 0 (−32) or 63 (31) everywhere
            byte[] b = new byte[rows * blocks * 210];
            for (int k = 0; k < rows * blocks; k++) {
                int o = k * 210;
                java.util.Arrays.fill(b, o, o + 192, (byte) fill);
                java.util.Arrays.fill(b, o + 192, o + 208, (byte) 127);         // scales
                b[o + 209] = 0x3C;                                            // d = 1
            }
            float[] wt = twin(c, b, rows * blocks);
            QuantMatrix w = new QuantMatrix(c.format, rows, cols, b);
            for (float sign : new float[]{1, -1}) {
                float[] x = new float[cols], y = new float[rows];
                java.util.Arrays.fill(x, 2.5f * sign);
                w.matmul(x, 1, y, Parallel.serial());
                for (int o = 0; o < rows; o++) {
                    double want = 0;
                    for (int i = 0; i < cols; i++) want += (double) wt[o * cols + i] * x[i];
                    assertEquals(want, y[o], 1e-5 * Math.abs(want), "quants " + fill + ", row " + o + ", activations " + 2.5f * sign);
                    assertEquals((fill == 0 ? -32 : 31) * 127.0 * 2.5 * cols * sign, want, 1e-3);
                }
            }
        }
    }

    /** A NaN or infinite activation makes an integer GEMV's product NaN, as fp32 arithmetic would make it non-finite. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"q4_k", "q6_k"})
    void integerGemvNonFiniteActivationsGiveNaN(String name) {
        Case c = caseOf(name);
        byte[] b = randomBlocks(c, 2, 5, false);
        QuantMatrix w = new QuantMatrix(c.format, 2, 256, b);
        for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] x = activations(256, 8), y = new float[2];
            x[17] = bad;
            w.matmul(x, 1, y, Parallel.serial());
            assertTrue(Float.isNaN(y[0]) && Float.isNaN(y[1]), name + ", " + bad + ": " + y[0] + ", " + y[1]);
        }
    }

    @Test
    void refusesStorageThatDoesNotMatchTheShape() {
        BlockFormat f = BlockFormat.of("q4_0");
        var e = assertThrows(IllegalArgumentException.class, () -> new QuantMatrix(f, 2, 48, new byte[36]));
        assertTrue(e.getMessage().contains("multiple of 32"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new QuantMatrix(f, 2, 64, new byte[71]));
        assertThrows(IllegalArgumentException.class,
                () -> new QuantMatrix(f, 2, 64, new byte[72]).matmul(new float[63], 1, new float[2], Parallel.serial()));
        assertNull(BlockFormat.of("q2_k"));
    }

    static float[] activations(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }
}
