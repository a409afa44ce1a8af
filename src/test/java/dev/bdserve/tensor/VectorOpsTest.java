package dev.bdserve.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * VectorOps against the ScalarKernels twins at non-zero offsets, with lengths just below, at and above multiples of 4,
 * 8 and 16 lanes (one vector at 128, 256 and 512 bits, the widths pom.xml runs this at) and of the 2- and 4-vector
 * unrolled loops.
 */
class VectorOpsTest {
    static final double REL = 1e-5;

    static float[] rnd(int n, long seed, double scale) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        return v;
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 127, 128, 129, 257, 1000, 4099})
    void dotAndAxpyAddScale(int n) {
        float[] a = rnd(n + 5, n, 3), b = rnd(n + 3, n + 1, 3);
        double mag = 0;
        for (int i = 0; i < n; i++) mag += Math.abs((double) a[5 + i] * b[3 + i]);
        assertEquals(ScalarKernels.dot(a, 5, b, 3, n), VectorOps.dot(a, 5, b, 3, n), REL * mag + 1e-30);

        float[] y1 = rnd(n + 2, 9, 1), y2 = y1.clone();
        ScalarKernels.axpy(0.37f, a, 5, y1, 2, n);
        VectorOps.axpy(0.37f, a, 5, y2, 2, n);
        assertArrayEquals(y1, y2, 0f, "axpy uses fma in both: must be identical");

        ScalarKernels.add(y1, 1, b, 3, n);
        VectorOps.add(y2, 1, b, 3, n);
        assertArrayEquals(y1, y2, 0f);

        ScalarKernels.scale(y1, 2, -1.5f, n);
        VectorOps.scale(y2, 2, -1.5f, n);
        assertArrayEquals(y1, y2, 0f);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 2048, 4099})
    void rmsnormMatches(int n) {
        float[] x = rnd(n + 4, n, 5), w = rnd(n, n + 7, 2);
        float[] o1 = new float[n + 1], o2 = new float[n + 1];
        ScalarKernels.rmsnorm(o1, 1, x, 4, w, 1e-5f, n);
        VectorOps.rmsnorm(o2, 1, x, 4, w, 1e-5f, n);
        for (int i = 0; i < n; i++) assertEquals(o1[1 + i], o2[1 + i], REL * Math.abs(o1[1 + i]) + 1e-7, "i=" + i);
        // in place
        float[] xi = x.clone();
        VectorOps.rmsnorm(xi, 4, xi, 4, w, 1e-5f, n);
        for (int i = 0; i < n; i++) assertEquals(o2[1 + i], xi[4 + i], 0f);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 3, 4, 5, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 1000})
    void siluMulMatches(int n) {
        float[] g = rnd(n + 1, n, 12), u = rnd(n + 2, n + 1, 3);
        float[] o1 = new float[n + 3], o2 = new float[n + 3];
        ScalarKernels.siluMul(g, 1, u, 2, o1, 3, n);
        VectorOps.siluMul(g, 1, u, 2, o2, 3, n);
        for (int i = 0; i < n; i++) assertEquals(o1[3 + i], o2[3 + i], 1e-5 * Math.abs(o1[3 + i]) + 1e-30, "i=" + i);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 500, 32000})
    void softmaxMaxArgmax(int n) {
        float[] x = rnd(n + 3, n, 20);
        assertEquals(ScalarKernels.max(x, 3, n), VectorOps.max(x, 3, n));
        assertEquals(ScalarKernels.argmax(x, 3, n), VectorOps.argmax(x, 3, n));
        // ties: first index wins
        float[] t = new float[n + 3];
        java.util.Arrays.fill(t, 1f);
        t[3 + n - 1] = 2f;
        if (n > 2) t[3 + n / 2] = 2f;
        assertEquals(n > 2 ? n / 2 : n - 1, VectorOps.argmax(t, 3, n));

        float[] s1 = x.clone(), s2 = x.clone();
        ScalarKernels.softmaxInPlace(s1, 3, n);
        VectorOps.softmaxInPlace(s2, 3, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            assertEquals(s1[3 + i], s2[3 + i], 1e-5 * s1[3 + i] + 1e-37, "i=" + i);
            sum += s2[3 + i];
        }
        assertEquals(1.0, sum, 1e-4);
        for (int i = 0; i < 3; i++) assertEquals(x[i], s2[i], 0f, "touched outside the range");
    }
}
