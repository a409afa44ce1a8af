package dev.bdserve.tensor;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** Hand-computed values for the scalar reference kernels. */
class ScalarKernelsTest {
    @Test
    void matmulByHand() {
        // w [2, 3], x [2 tokens, 3]
        Matrix w = Matrix.ofF32(2, 3, new float[] {1, 2, 3, -1, 0, 1});
        float[] x = {1, 1, 1, 2, 0, -1};
        float[] y = new float[4];
        ScalarKernels.matmul(w, x, 2, y);
        assertArrayEquals(new float[] {6, 0, -1, -3}, y);
        Matrix b = Matrix.fromFloats(DType.BF16, 2, 3, new float[] {1, 2, 3, -1, 0, 1});
        ScalarKernels.matmul(b, x, 2, y);
        assertArrayEquals(new float[] {6, 0, -1, -3}, y);
    }

    @Test
    void rmsnormSoftmaxSiluDotArgmax() {
        float[] out = new float[2];
        ScalarKernels.rmsnorm(out, new float[] {3, 4}, new float[] {1, 2}, 0f, 2);
        float inv = (float) (1 / Math.sqrt(12.5));
        assertEquals(3 * inv, out[0], 1e-7f);
        assertEquals(8 * inv, out[1], 1e-6f);

        float[] s = {0, (float) Math.log(3)};
        ScalarKernels.softmaxInPlace(s, 0, 2);
        assertEquals(0.25f, s[0], 1e-7f);
        assertEquals(0.75f, s[1], 1e-7f);

        assertEquals(0f, ScalarKernels.silu(0f));
        assertEquals(1 / (1 + Math.exp(-1)), ScalarKernels.silu(1f), 1e-7);
        assertEquals(32f, ScalarKernels.dot(new float[] {1, 2, 3}, 0, new float[] {4, 5, 6}, 0, 3));
        assertEquals(1, ScalarKernels.argmax(new float[] {1, 5, 5, 2}, 0, 4));
        assertEquals(5f, ScalarKernels.max(new float[] {1, 5, 5, 2}, 0, 4));
    }
}
