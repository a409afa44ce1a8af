package dev.bdserve.tensor.dnnl;

import dev.bdserve.model.gguf.GgmlCodec;
import dev.bdserve.model.gguf.GgmlType;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Numerics;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.Q8Matrix;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tensor.Weight;
import dev.bdserve.tensor.quant.BlockFormat;
import dev.bdserve.tensor.quant.QuantMatrix;
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
 * Native (oneDNN bf16) products against the fp64 product of the same bf16-rounded operands, for every weight layout
 * the native path takes (a bf16 matrix in place, Q8_0 tiles, rows of the block formats and f16), across token counts
 * (padded ones included), rows across whole and partial tiles, and panels small enough that one product spans many.
 */
class DnnlWeightTest {
    static Dnnl dnnl;
    static DnnlContext ctx;
    static Parallel pool;

    @BeforeAll static void start() {
        dnnl = DnnlTestLibrary.require();
        ctx = dnnl.context(2);
        pool = new SpinPool(3);
    }

    @AfterAll static void stop() {
        if (pool != null) pool.close();
        if (ctx != null) ctx.close();
    }

    static float[] gaussian(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    static Weight weight(String format, int rows, int cols, long seed) {
        return switch (format) {
            case "bf16" -> Matrix.fromFloats(DType.BF16, rows, cols, gaussian(rows * cols, seed));
            case "f16" -> Matrix.fromFloats(DType.F16, rows, cols, gaussian(rows * cols, seed));
            case "q8_0" -> {
                SplittableRandom r = new SplittableRandom(seed);
                byte[] q = new byte[rows * cols];
                r.nextBytes(q);
                short[] d = new short[rows * cols / 32];
                for (int i = 0; i < d.length; i++) d[i] = Float.floatToFloat16((float) (r.nextDouble(1e-3, 0.1) * (r.nextBoolean() ? 1 : -1)));
                yield new Q8Matrix(rows, cols, q, d);
            }
            default -> {                                                    // a GGML block format
                BlockFormat f = BlockFormat.of(format);
                float[] w = gaussian(rows * cols, seed);
                GgmlType t = GgmlType.valueOf(format.toUpperCase(java.util.Locale.ROOT));
                byte[] blocks = new byte[rows * cols / f.blockSize() * f.blockBytes()];
                GgmlCodec.quantize(t, w, 0, w.length, blocks, 0);
                yield new QuantMatrix(f, rows, cols, blocks);
            }
        };
    }

    /** y[t, o] = Σ bf16(x[t, k])·bf16(w[o, k]) in fp64, and Σ|·| (the scale of fp32 accumulation error). */
    static double[][] reference(Weight w, float[] x, int T) {
        int rows = w.rows(), cols = w.cols();
        double[] y = new double[T * rows], mag = new double[T * rows];
        float[] row = new float[cols];
        for (int o = 0; o < rows; o++) {
            w.row(o, row, 0);
            for (int t = 0; t < T; t++) {
                double s = 0, m = 0;
                for (int k = 0; k < cols; k++) {
                    double p = (double) Numerics.bf16ToFloat(Numerics.floatToBf16(row[k])) * Numerics.bf16ToFloat(Numerics.floatToBf16(x[t * cols + k]));
                    s += p;
                    m += Math.abs(p);
                }
                y[t * rows + o] = s;
                mag[t * rows + o] = m;
            }
        }
        return new double[][]{y, mag};
    }

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String f : List.of("bf16", "q8_0", "f16", "q4_0", "q5_1"))
            for (int[] s : new int[][]{{1, 32}, {33, 64}, {70, 96}, {100, 160}})
                for (int T : new int[]{1, 2, 16, 17, 45})
                    a.add(Arguments.of(f, s[0], s[1], T));
        for (int T : new int[]{1, 2, 3, 16, 17})                              // one block of 16 columns (a TP 4 shard of a small model)
            for (int rows : new int[]{16, 32, 63})
                a.add(Arguments.of("bf16", rows, 16, T));
        for (int T : new int[]{2, 19}) {                                     // copies kept row-major (columns not a multiple of 16)
            a.add(Arguments.of("bf16", 70, 40, T));
            a.add(Arguments.of("f16", 70, 40, T));
        }
        for (String f : List.of("q4_k", "q6_k")) {
            for (int T : new int[]{3, 33})
                a.add(Arguments.of(f, 40, 256, T));
            a.add(Arguments.of(f, 5, 8192, 17));                              // rows kept as column strips
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1}x{2} T={3}")
    @MethodSource("cases")
    void nativeProductsMatchTheBf16Reference(String format, int rows, int cols, int T) {
        Weight base = weight(format, rows, cols, 31L * rows + cols);
        float[] x = gaussian(T * cols + 3, rows + 7L * T);
        double[][] ref = reference(base, x, T);
        // panels of about 40 rows (2 tiles) and results of 48 columns: several native calls per product
        // and the weight's bf16 copy multiplied in place, results in chunks of 48 columns
        for (DnnlWeight w : List.of(new DnnlWeight(base, ctx, 1), new DnnlWeight(base, ctx, 1, false, 2L * 40 * cols, 4L * 48 * DnnlContext.paddedTokens(T)),
                new DnnlWeight(base, ctx, 1, true, 2L * 40 * cols, 4L * 48 * DnnlContext.paddedTokens(T)))) {
            float[] y = new float[T * rows + 5];
            java.util.Arrays.fill(y, Float.NaN);
            w.matmul(x, T, y, pool);
            for (int i = 0; i < T * rows; i++)
                assertEquals(ref[0][i], y[i], 1e-5 * ref[1][i] + 1e-30, format + " row " + i % rows + " token " + i / rows);
            for (int i = T * rows; i < y.length; i++) assertTrue(Float.isNaN(y[i]), "wrote past the product at " + i);
        }
    }

    @Test
    void fewerTokensThanTheThresholdRunTheJavaKernelBitForBit() {
        Weight base = weight("q8_0", 70, 96, 3);
        DnnlWeight w = new DnnlWeight(base, ctx, 8);
        for (int T : new int[]{1, 7}) {
            float[] x = gaussian(T * 96, T), want = new float[T * 70], got = new float[T * 70];
            base.matmul(x, T, want, pool);
            w.matmul(x, T, got, pool);
            assertArrayEquals(want, got, "T=" + T);
        }
        assertEquals(base.format(), w.format());
        assertEquals(base.bytes(), w.bytes());
        assertTrue(w.sameStorage(base) && base.sameStorage(base));
        float[] r1 = new float[96], r2 = new float[96];
        base.row(69, r1, 0);
        w.row(69, r2, 0);
        assertArrayEquals(r1, r2);
    }

    @Test
    void thresholdsFollowTheFormat() {
        assertEquals(0, NativeKernels.minTokens(Matrix.fromFloats(DType.F32, 2, 32, new float[64])), "fp32 stays on the Java path");
        NativeKernels k = NativeKernels.resolve(NativeKernels.Choice.NATIVE, new Dnnl.Available(dnnl));
        assertSame(Matrix.class, k.wrap(Matrix.fromFloats(DType.F32, 2, 32, new float[64]), ctx).getClass());
        assertEquals(NativeKernels.MIN_TOKENS_BF16, NativeKernels.minTokens(weight("bf16", 2, 32, 1)));
        assertEquals(NativeKernels.MIN_TOKENS_Q8_0, NativeKernels.minTokens(weight("q8_0", 2, 32, 1)));
        assertEquals(NativeKernels.MIN_TOKENS_DEQUANTIZED, NativeKernels.minTokens(weight("q4_0", 2, 32, 1)));
        assertInstanceOf(DnnlWeight.class, k.wrap(weight("bf16", 2, 32, 1), ctx));
        assertInstanceOf(DnnlWeight.class, k.wrap(weight("q8_0", 2, 32, 1), ctx));
        assertTrue(NativeKernels.availableMemory() > 0, "MemAvailable read");
        assertFalse(ctx.implementation(false, 16, 64, 96).isBlank(), "oneDNN names the implementation it chose");
        assertFalse(ctx.implementation(true, 16, 64, 96).isBlank());
    }

    @Test
    void rejectsShortOperands() {
        DnnlWeight w = new DnnlWeight(weight("bf16", 8, 32, 1), ctx, 1);
        assertThrows(IllegalArgumentException.class, () -> w.matmul(new float[2 * 32 - 1], 2, new float[16], pool));
        assertThrows(IllegalArgumentException.class, () -> w.matmul(new float[2 * 32], 2, new float[15], pool));
        assertThrows(IllegalArgumentException.class, () -> new DnnlWeight(w, ctx, 1));
    }
}
