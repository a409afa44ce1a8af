package dev.bdserve.model.gguf;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The K-quant quantisers Q4_K, Q5_K and Q6_K against ggml's {@code from_float_ref} of the prebuilt libggml-base,
 * byte for byte: random super-blocks of {@link GgmlQuantizeTest#fill}'s shapes and scales (each 32-weight
 * sub-block its own), and {@link GgmlQuantizeTest#extremeRows} both eight to a super-block and each repeated
 * over one.
 */
class GgmlKQuantizeTest {
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void ggmlHasAReferenceQuantiser(GgmlType t) {
        assertTrue(GgmlCodec.canQuantize(t));
        assertNotNull(GgmlReference.get().traits(t).fromFloatRef());
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void randomRowsMatchGgml(GgmlType t) {
        for (int seed = 0; seed < 300; seed++) {
            Random r = new Random(seed * 7919L + t.id);
            int blocks = 1 + r.nextInt(4);
            float[] x = new float[blocks * 256];
            boolean mixed = r.nextBoolean();                             // one shape per sub-block, or per super-block
            for (int b = 0; b < blocks; b++) {
                if (mixed) for (int s = 0; s < 8; s++) GgmlQuantizeTest.fill(x, b * 256 + 32 * s, 32, r);
                else GgmlQuantizeTest.fill(x, b * 256, 256, r);
            }
            GgmlQuantizeTest.assertSameAsGgml(t, x, r, "seed " + seed);
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void extremeRowsMatchGgml(GgmlType t) {
        List<float[]> rows = GgmlQuantizeTest.extremeRows();
        for (int i = 0; i < rows.size(); i++) {
            float[] x = new float[256];
            for (int s = 0; s < 8; s++) System.arraycopy(rows.get(i), 0, x, 32 * s, 32);
            GgmlQuantizeTest.assertSameAsGgml(t, x, new Random(i), "extreme row " + i + " repeated " + Arrays.toString(rows.get(i)));
        }
        int blocks = (rows.size() + 7) / 8;
        float[] all = new float[blocks * 256];
        for (int i = 0; i < rows.size(); i++) System.arraycopy(rows.get(i), 0, all, 32 * i, 32);
        GgmlQuantizeTest.assertSameAsGgml(t, all, new Random(-1), "extreme rows eight to a super-block");
    }

    /** The extreme rows quantised many times, so that the JIT's optimised code is checked too. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void compiledCodeStillMatchesGgml(GgmlType t) {
        List<float[]> rows = GgmlQuantizeTest.extremeRows();
        float[] x = new float[(rows.size() + 7) / 8 * 256];
        for (int i = 0; i < rows.size(); i++) System.arraycopy(rows.get(i), 0, x, 32 * i, 32);
        byte[] want = GgmlReference.get().fromFloatRef(t, x), got = new byte[want.length];
        for (int run = 0; run < 2000; run++) {
            GgmlCodec.quantize(t, x, 0, x.length, got, 0);
            if (!Arrays.equals(got, want)) assertArrayEquals(want, got, t + " run " + run);
        }
    }

    /** Quantising then dequantising Gaussian weights loses little: RMSE under a bound per type (a sanity check). */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void roundTripErrorIsSmall(GgmlType t) {
        Random r = new Random(t.id);
        float[] x = new float[256 * 64];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        byte[] q = new byte[(int) t.bytes(x.length)];
        GgmlCodec.quantize(t, x, 0, x.length, q, 0);
        float[] y = new float[x.length];
        GgmlCodec.dequantize(t, MemorySegment.ofArray(q), 0, y, 0, x.length);
        double se = 0;
        for (int i = 0; i < x.length; i++) se += (x[i] - y[i]) * (double) (x[i] - y[i]);
        double rmse = Math.sqrt(se / x.length), bound = switch (t) { case Q4_K -> 0.12; case Q5_K -> 0.06; default -> 0.03; };
        assertTrue(rmse < bound, t + " RMSE " + rmse + " on unit Gaussians, bound " + bound);
    }
}
