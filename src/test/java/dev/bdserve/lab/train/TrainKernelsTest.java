package dev.bdserve.lab.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.bdserve.tensor.VectorWidth;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The training kernels against fp64 sums, at lengths around multiples of 4, 8 and 16 lanes (the vector lengths at
 * 128, 256 and 512 bits) and at unaligned offsets. pom.xml's kernel-widths profile runs this at each width.
 */
class TrainKernelsTest {
    static float[] rnd(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextDouble() * 4 - 2);
        return v;
    }

    @Test
    void speciesIsTheKernelWidth() {
        assertEquals(VectorWidth.BITS, TrainKernels.S.vectorBitSize());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 1000})
    void dotAndAxpyMatchFp64(int n) {
        float[] a = rnd(n + 3, n), b = rnd(n + 5, n + 1);
        double want = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            want += (double) a[3 + i] * b[5 + i];
            mag += Math.abs((double) a[3 + i] * b[5 + i]);
        }
        assertEquals(want, TrainKernels.dot(a, 3, b, 5, n), 1e-6 * mag + 1e-30);

        float[] y = rnd(n + 6, n + 2), y0 = y.clone();
        TrainKernels.axpy(-0.7f, a, 3, y, 2, n);
        for (int i = 0; i < y.length; i++) {
            boolean in = i >= 2 && i < 2 + n;
            double e = in ? y0[i] + -0.7 * a[3 + i - 2] : y0[i];
            assertEquals(e, y[i], in ? 1e-6 * (Math.abs(y0[i]) + Math.abs(0.7 * a[3 + i - 2])) : 0, "y[" + i + "]");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 8, 9, 16, 17, 33, 64})
    void linearForwardAndBackwardMatchFp64(int out) {
        int in = out + 5, T = 3;
        float[] w = rnd(out * in, out), x = rnd(T * in, in), dy = rnd(T * out, out + in);
        float[] y = new float[T * out];
        TrainKernels.linearT(TrainKernels.transpose(w, out, in), out, in, x, T, y);
        float[] dx = rnd(T * in, 3), dx0 = dx.clone();
        TrainKernels.linearBackward(w, out, in, dy, T, dx);
        for (int t = 0; t < T; t++) {
            for (int o = 0; o < out; o++) {
                double s = 0, mag = 0;
                for (int i = 0; i < in; i++) {
                    s += (double) x[t * in + i] * w[o * in + i];
                    mag += Math.abs((double) x[t * in + i] * w[o * in + i]);
                }
                assertEquals(s, y[t * out + o], 1e-6 * mag, "y t=" + t + " o=" + o);
            }
            for (int i = 0; i < in; i++) {
                double s = dx0[t * in + i], mag = Math.abs(s);
                for (int o = 0; o < out; o++) {
                    s += (double) dy[t * out + o] * w[o * in + i];
                    mag += Math.abs((double) dy[t * out + o] * w[o * in + i]);
                }
                assertEquals(s, dx[t * in + i], 1e-6 * mag, "dx t=" + t + " i=" + i);
            }
        }
    }
}
