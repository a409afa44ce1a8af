package dev.bdserve.tensor;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * AttentionOps against the ScalarKernels twins, every fill of a block: block sizes (strides) below, at and above one
 * and two vectors, and head sizes around one and four vectors, at each width pom.xml runs this at (128, 256 and 512
 * bits: 4, 8 and 16 lanes).
 */
class AttentionOpsTest {
    static final double REL = 1e-5;

    @ParameterizedTest
    @CsvSource({"1,1", "3,1", "8,3", "8,16", "64,16", "64,8", "63,17", "64,32", "16,24", "128,16", "5,7", "64,64",
            "8,4", "8,5", "16,15", "8,31", "16,33", "64,48", "9,12"})
    void scoresMatchScalarTwin(int D, int stride) {
        int kvOff = 2 * D * stride + 3;                                   // a later head inside a block, non-aligned
        float[] kt = VectorOpsTest.rnd(kvOff + D * stride + 5, D * 31L + stride, 2);
        float[] q = VectorOpsTest.rnd(D + 4, D, 1.5);
        for (int n = 1; n <= stride; n++) {
            int sOff = 5, len = sOff + n + AttentionOps.SCORE_PAD;
            float[] want = new float[len + 4], got = new float[len + 4];
            java.util.Arrays.fill(got, 7f);
            ScalarKernels.scoresTransposed(q, 4, kt, kvOff, stride, n, D, 0.125f, want, sOff);
            AttentionOps.scoresTransposed(q, 4, kt, kvOff, stride, n, D, 0.125f, got, sOff, D * stride > kvOff ? kvOff : kvOff - D * stride);
            for (int i = 0; i < n; i++) {
                double mag = 0;
                for (int d = 0; d < D; d++) mag += Math.abs((double) q[4 + d] * kt[kvOff + d * stride + i]) * 0.125;
                assertEquals(want[sOff + i], got[sOff + i], REL * mag + 1e-30, "D=" + D + " stride=" + stride + " n=" + n + " i=" + i);
            }
            for (int i = 0; i < sOff; i++) assertEquals(7f, got[i], "written before the scores");
            for (int i = len; i < got.length; i++) assertEquals(7f, got[i], "written past the pad");
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1", "3,4", "8,8", "8,12", "64,64", "64,768", "63,70", "128,256", "40,41", "33,33",
            "4,4", "5,9", "15,16", "16,16", "17,20", "31,31", "32,40", "48,48", "65,65", "80,96"})
    void weightedSumMatchesScalarTwin(int D, int stride) {
        for (int n : new int[] {0, 1, 2, 7, 16, 17}) {
            float[] v = VectorOpsTest.rnd(3 + n * stride + D, D + n, 3), p = VectorOpsTest.rnd(n + 2, n, 1);
            float[] want = VectorOpsTest.rnd(D + 6, 11, 1), got = want.clone();
            ScalarKernels.weightedSum(p, 2, n, v, 3, stride, D, want, 6);
            AttentionOps.weightedSum(p, 2, n, v, 3, stride, D, got, 6, n > 1 ? 3 + stride : 3);
            for (int d = 0; d < D; d++) {
                double mag = Math.abs(want[6 + d]);
                for (int j = 0; j < n; j++) mag += Math.abs((double) p[2 + j] * v[3 + j * stride + d]);
                assertEquals(want[6 + d], got[6 + d], REL * mag + 1e-30, "D=" + D + " stride=" + stride + " n=" + n + " d=" + d);
            }
            for (int i = 0; i < 6; i++) assertEquals(want[i], got[i], 0f, "written before the output");
        }
    }

    /** float values as bf16 bit patterns (rounded), and those patterns widened back: what a BF16 cache holds and reads. */
    static short[] bf16(float[] x) {
        short[] b = new short[x.length];
        for (int i = 0; i < x.length; i++) b[i] = Numerics.floatToBf16(x[i]);
        return b;
    }

    static float[] widened(short[] b) {
        float[] f = new float[b.length];
        for (int i = 0; i < b.length; i++) f[i] = Numerics.bf16ToFloat(b[i]);
        return f;
    }

    /** The BF16-cache kernels equal the scalar twins run on the widened values, at every block fill. */
    @ParameterizedTest
    @CsvSource({"1,1", "3,1", "8,3", "8,16", "64,16", "63,17", "64,32", "16,24", "128,16", "5,7", "8,31", "16,33", "9,12"})
    void bf16ScoresMatchScalarTwinOnTheWidenedKeys(int D, int stride) {
        int kvOff = 2 * D * stride + 3;
        short[] kt = bf16(VectorOpsTest.rnd(kvOff + D * stride + 5, D * 37L + stride, 2));
        float[] ktw = widened(kt), q = VectorOpsTest.rnd(D + 4, D, 1.5);
        for (int n = 1; n <= stride; n++) {
            int sOff = 5, len = sOff + n + AttentionOps.SCORE_PAD;
            float[] want = new float[len + 4], got = new float[len + 4];
            java.util.Arrays.fill(got, 7f);
            ScalarKernels.scoresTransposed(q, 4, ktw, kvOff, stride, n, D, 0.125f, want, sOff);
            AttentionOps.scoresTransposedBf16(q, 4, kt, kvOff, stride, n, D, 0.125f, got, sOff, kvOff - D * stride);
            for (int i = 0; i < n; i++) {
                double mag = 0;
                for (int d = 0; d < D; d++) mag += Math.abs((double) q[4 + d] * ktw[kvOff + d * stride + i]) * 0.125;
                assertEquals(want[sOff + i], got[sOff + i], REL * mag + 1e-30, "D=" + D + " stride=" + stride + " n=" + n + " i=" + i);
            }
            for (int i = 0; i < sOff; i++) assertEquals(7f, got[i], "written before the scores");
            for (int i = len; i < got.length; i++) assertEquals(7f, got[i], "written past the pad");
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1", "3,4", "8,8", "64,64", "63,70", "128,256", "40,41", "33,33", "5,9", "17,20", "65,65", "80,96"})
    void bf16WeightedSumMatchesScalarTwinOnTheWidenedValues(int D, int stride) {
        for (int n : new int[] {0, 1, 2, 7, 16, 17}) {
            short[] v = bf16(VectorOpsTest.rnd(3 + n * stride + D, D + n + 5, 3));
            float[] vw = widened(v), p = VectorOpsTest.rnd(n + 2, n, 1);
            float[] want = VectorOpsTest.rnd(D + 6, 11, 1), got = want.clone();
            ScalarKernels.weightedSum(p, 2, n, vw, 3, stride, D, want, 6);
            AttentionOps.weightedSumBf16(p, 2, n, v, 3, stride, D, got, 6, n > 1 ? 3 + stride : 3);
            for (int d = 0; d < D; d++) {
                double mag = Math.abs(want[6 + d]);
                for (int j = 0; j < n; j++) mag += Math.abs((double) p[2 + j] * vw[3 + j * stride + d]);
                assertEquals(want[6 + d], got[6 + d], REL * mag + 1e-30, "D=" + D + " stride=" + stride + " n=" + n + " d=" + d);
            }
            for (int i = 0; i < 6; i++) assertEquals(want[i], got[i], 0f, "written before the output");
        }
    }
}
