package dev.bdserve.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * MatMul (vector) against ScalarKernels.matmul (fp64 accumulation) across shapes, dtypes and T. The shapes are chosen
 * for every vector width (pom.xml runs this class at 128, 256 and 512 bits, VL = 4, 8, 16 floats): widths just
 * below, at and above multiples of VL and of the 2·VL of the 16-bit pair loads; token counts around the GEMM's token
 * groups of 2·VL (full, partial, and a last group of at most VL tokens) and the small-T and GEMV paths; row counts
 * around the GEMM tile R = 6, GEMM_MIN_ROWS and the parallel grain; widths around KC and WHOLE_ROWS.
 */
class MatMulTest {
    /** fp32 accumulation in a different order: error relative to Σ|w·x| of each output. */
    static final double REL_TOL = 1e-5;

    static SpinPool pool;

    @BeforeAll static void start() { pool = new SpinPool(2); }
    @AfterAll static void stop() { pool.close(); }

    static Stream<Arguments> cases() {
        int[][] shapes = {{1, 1}, {1, 17}, {7, 1}, {3, 5}, {5, 7}, {8, 16}, {9, 31}, {12, 63}, {6, 64}, {49, 65}, {16, 33}, {17, 257},
                {33, 300}, {64, 512}, {13, 1000}, {203, 96}, {13, 1100}, {7, 2051}, {53, 1100}, {50, 2051}, {48, 40}, {47, 40},
                {61, 2304}, {25, 1280}, {54, 1024}, {97, 1025}};
        int[] ts = {1, 2, 3, 4, 5, 8, 9, 12, 13, 15, 16, 17, 24, 31, 32, 33, 48, 64, 65};
        List<Arguments> out = new ArrayList<>();
        int i = 0;
        for (DType d : DType.values())
            for (int[] s : shapes)
                for (int t : ts)
                    if ((i++ % 3 == 0) || t <= 2 || t == 16 || t == 33) out.add(Arguments.of(d, s[0], s[1], t));
        return out.stream();
    }

    static Matrix randomMatrix(DType d, int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.5);
        return Matrix.fromFloats(d, rows, cols, v);
    }

    static float[] randomVec(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextDouble() * 4 - 2);
        return v;
    }

    /** Asserts |y - ref| ≤ tol·Σ|w·x| (+ a tiny absolute floor) per output element. */
    static void assertClose(Matrix w, float[] x, int T, float[] ref, float[] y, double tol) {
        int rows = w.rows(), cols = w.cols();
        for (int tt = 0; tt < T; tt++)
            for (int oo = 0; oo < rows; oo++) {
                int t = tt, o = oo;
                double mag = 0;
                for (int i = 0; i < cols; i++) mag += Math.abs((double) w.get(o, i) * x[t * cols + i]);
                double err = Math.abs((double) y[t * rows + o] - ref[t * rows + o]);
                assertTrue(err <= tol * mag + 1e-30, () -> w + " T=" + T + " t=" + t + " o=" + o + ": " + y[t * rows + o] + " vs " + ref[t * rows + o]);
            }
    }

    @ParameterizedTest(name = "{0} {1}x{2} T={3}")
    @MethodSource("cases")
    void matchesScalar(DType d, int rows, int cols, int T) {
        Matrix w = randomMatrix(d, rows, cols, rows * 31L + cols);
        float[] x = randomVec(T * cols, T * 7L + cols);
        float[] ref = new float[T * rows];
        ScalarKernels.matmul(w, x, T, ref);
        float[] y = new float[T * rows];
        MatMul.matmul(w, x, T, y, pool);
        assertClose(w, x, T, ref, y, REL_TOL);
        float[] y1 = new float[T * rows];
        MatMul.matmul(w, x, T, y1, Parallel.serial());
        assertClose(w, x, T, ref, y1, REL_TOL);
    }

    @Test
    void rowRangeWritesOnlyItsRows() {
        for (DType d : DType.values())
            for (int T : new int[] {1, 4, 16, 20}) {
                Matrix w = randomMatrix(d, 29, 70, 5);
                float[] x = randomVec(T * 70, 6);
                float[] ref = new float[T * 29];
                ScalarKernels.matmul(w, x, T, ref);
                float[] y = new float[T * 29];
                java.util.Arrays.fill(y, Float.NaN);
                MatMul.matmulRows(w, x, T, y, 3, 20);
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < 29; o++) {
                        float v = y[t * 29 + o];
                        if (o >= 3 && o < 20) assertEquals(ref[t * 29 + o], v, 1e-4 * (1 + Math.abs(ref[t * 29 + o])));
                        else assertTrue(Float.isNaN(v), "row " + o + " written");
                    }
            }
    }

    @Test
    void f16SubnormalsAndExtremesAreExact() {
        // all finite F16 bit patterns in one row: the widened values must be exact
        List<Short> pats = new ArrayList<>();
        for (int b = 0; b < 0x10000; b++) if ((b & 0x7C00) != 0x7C00) pats.add((short) b);
        short[] bits = new short[pats.size()];
        for (int i = 0; i < bits.length; i++) bits[i] = pats.get(i);
        int vl = Widening.VL, n = bits.length / vl * vl;
        float[] ws = new float[vl];
        for (int i = 0; i < n; i += vl) {
            Widening.f16(bits, i).intoArray(ws, 0);
            for (int j = 0; j < vl; j++)
                assertEquals(Float.floatToRawIntBits(Float.float16ToFloat(bits[i + j])), Float.floatToRawIntBits(ws[j]));
        }
    }

    @Test
    void bf16WideningIsExact() {
        short[] bits = new short[0x10000];
        for (int b = 0; b < bits.length; b++) bits[b] = (short) b;
        int vl = Widening.VL;
        float[] ws = new float[vl];
        for (int i = 0; i < bits.length; i += vl) {
            Widening.bf16(bits, i).intoArray(ws, 0);
            for (int j = 0; j < vl; j++)
                assertEquals(Float.floatToRawIntBits(Numerics.bf16ToFloat(bits[i + j])), Float.floatToRawIntBits(ws[j]));
        }
    }

    @Test
    void rejectsBadArguments() {
        Matrix w = randomMatrix(DType.F32, 4, 4, 1);
        assertThrows(IllegalArgumentException.class, () -> MatMul.matmul(w, new float[4], 2, new float[8], pool));
        assertThrows(IllegalArgumentException.class, () -> MatMul.matmul(w, new float[8], 2, new float[7], pool));
        assertThrows(IllegalArgumentException.class, () -> MatMul.matmul(w, new float[8], 0, new float[8], pool));
    }
}
