package dev.bdserve.tensor;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The LoRA expand kernel against its scalar twin across dtypes, ranks, widths and offsets: output widths just below,
 * at and above multiples of 4, 8 and 16 lanes and of the token kernel's pairs of vectors, so that every vector width
 * pom.xml runs this at (128, 256, 512 bits) meets full vectors and tails.
 */
class AccumulateTransposedTest {
    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (DType d : DType.values())
            for (int r : new int[]{1, 3, 4, 5, 7, 16, 64})
                for (int n : new int[]{1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 768}) b.add(Arguments.of(d, r, n));
        return b.build();
    }

    /** A [r, n] matrix of dtype d with entries uniform in [-1, 1). */
    static Matrix randomMatrix(DType d, int r, int n, SplittableRandom rnd) {
        float[] w = new float[r * n];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextDouble() * 2 - 1);
        return Matrix.fromFloats(d, r, n, w);
    }

    @ParameterizedTest(name = "{0} r={1} out={2}")
    @MethodSource("cases")
    void matchesScalarTwin(DType d, int r, int n) {
        SplittableRandom rnd = new SplittableRandom(r * 1000L + n);
        Matrix wt = randomMatrix(d, r, n, rnd);
        float[] s = new float[r + 3];
        for (int i = 0; i < s.length; i++) s[i] = i % 5 == 4 ? 0f : (float) (rnd.nextDouble() * 2 - 1);
        float[] y0 = new float[n + 5], y1 = new float[n + 5];
        for (int i = 0; i < y0.length; i++) y0[i] = y1[i] = (float) rnd.nextDouble();
        MatMul.accumulateTransposed(wt, s, 2, y0, 3);
        ScalarKernels.accumulateTransposed(wt, s, 2, y1, 3);
        for (int i = 0; i < y0.length; i++) {
            double scale = 1;
            for (int j = 0; j < r; j++) scale += Math.abs(s[2 + j]);
            assertEquals(y1[i], y0[i], 1e-5 * scale, "output " + i);
        }
        assertEquals(y1[0], y0[0], 0.0, "outside the range untouched");
        assertEquals(y1[n + 4], y0[n + 4], 0.0, "outside the range untouched");
    }

    @ParameterizedTest(name = "{0} r={1} out={2}")
    @MethodSource("cases")
    void tokensMatchScalarTwin(DType d, int r, int n) {
        SplittableRandom rnd = new SplittableRandom(r * 7000L + n);
        Matrix wt = randomMatrix(d, r, n, rnd);
        for (int tokens : new int[] {1, 3, 4, 5, 8, 11}) {
            int sw = r + 2, yw = n + 3;                                  // rows of s and y wider than used
            float[] s = new float[tokens * sw + 1];
            for (int i = 0; i < s.length; i++) s[i] = i % 5 == 4 ? 0f : (float) (rnd.nextDouble() * 2 - 1);
            float[] y0 = new float[tokens * yw + 2], y1 = new float[y0.length];
            for (int i = 0; i < y0.length; i++) y0[i] = y1[i] = (float) rnd.nextDouble();
            int[] sOffs = new int[tokens], yOffs = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                sOffs[t] = 1 + t * sw;
                yOffs[t] = 2 + (tokens - 1 - t) * yw;                    // tokens' rows in reverse order
            }
            MatMul.accumulateTransposedTokens(wt, s, sOffs, y0, yOffs, tokens);
            for (int t = 0; t < tokens; t++) ScalarKernels.accumulateTransposed(wt, s, sOffs[t], y1, yOffs[t]);
            double scale = 1;
            for (float v : s) scale += Math.abs(v);
            for (int i = 0; i < y0.length; i++) assertEquals(y1[i], y0[i], 1e-5 * scale, tokens + " tokens, output " + i);
        }
    }
}
