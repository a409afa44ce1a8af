package dev.bdserve.engine;

import dev.bdserve.lora.LoraSharding;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.GgufRecipe;
import dev.bdserve.model.gguf.QuantizingSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.dnnl.Dnnl;
import dev.bdserve.tensor.dnnl.DnnlTestLibrary;
import dev.bdserve.tensor.dnnl.DnnlWeight;
import dev.bdserve.tensor.dnnl.NativeKernels;
import dev.bdserve.tensor.dnnl.NativeKernels.Choice;
import org.junit.jupiter.api.Test;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A model group on the native kernels against the same group on the Java kernels, and the native one at TP 2 against
 * TP 1: the logits of every prompt position agree to bf16's rounding of the activations. Needs oneDNN (installed by
 * {@code .ci/run}) and, for its bf16 matmuls, AVX-512 ({@link DnnlTestLibrary}).
 */
class NativeKernelsGroupTest {

    /** Logits [positions][vocab] of one forward pass over {@code n} prompt tokens. */
    static float[][] logits(Supplier<TensorSource> model, int tp, Choice kernels, int n, String[] description) {
        return logits(model, tp, kernels, NativeKernels.Copies.NONE, n, description);
    }

    /** As above, quantized weights' native products reading {@code copies}. */
    static float[][] logits(Supplier<TensorSource> model, int tp, Choice kernels, NativeKernels.Copies copies, int n, String[] description) {
        TpGroup.Options o = new TpGroup.Options(tp, 2, LoraSharding.AUTO, LoraSharding.REPLICATED, 0).withKvCache(32L << 20, 16)
                .withKernels(kernels).withNativeCopies(copies);
        try (TpGroup g = TpGroup.threads(model, o)) {
            description[0] = g.kernels();
            int vocab = g.config().vocabSize();
            int[] tokens = new int[n], pos = new int[n], seq = new int[n], ads = new int[n], rows = new int[n];
            for (int i = 0; i < n; i++) {
                tokens[i] = 3 + (i * 37) % (vocab - 3);
                pos[i] = i;
                ads[i] = -1;
                rows[i] = i;
            }
            int[][] tables = {new BlockManager(g.kvBlocks(), g.kvBlockSize()).allocateTable(n)};
            float[] flat = new float[n * vocab];
            g.forward(new StepBatch(tokens, pos, seq, ads, rows, tables), flat);
            float[][] out = new float[n][vocab];
            for (int i = 0; i < n; i++) System.arraycopy(flat, i * vocab, out[i], 0, vocab);
            return out;
        }
    }

    /** Every row within 2 % of its largest logit: bf16 activations, not a wrong product (which moves logits by O(1)). */
    static void assertClose(float[][] want, float[][] got, String what) { assertClose(want, got, what, false); }

    /** As above; {@code againstJava}: the rows must also differ (else the native path did not run). */
    static void assertClose(float[][] want, float[][] got, String what, boolean againstJava) {
        for (int i = 0; i < want.length; i++) {
            double scale = 0, diff = 0;
            for (int v = 0; v < want[i].length; v++) {
                scale = Math.max(scale, Math.abs(want[i][v]));
                diff = Math.max(diff, Math.abs(want[i][v] - got[i][v]));
                assertTrue(Float.isFinite(got[i][v]), what + ": logit " + v + " of position " + i + " is " + got[i][v]);
            }
            assertTrue(diff <= 0.02 * scale, what + ": position " + i + " differs by " + diff + " (largest logit " + scale + ")");
            assertTrue(!againstJava || diff > 0 || i < NativeKernels.MIN_TOKENS_BF16, what + ": position " + i + " is bit-identical: the native path did not run");
        }
    }

    @Test
    void bf16ModelOnNativeKernelsMatchesJavaAndTpTwoMatchesTpOne() {
        DnnlTestLibrary.require();
        Supplier<TensorSource> m = () -> new SynthModel(EngineTest.C, DType.BF16, 5);
        String[] d = new String[1];
        float[][] java = logits(m, 1, Choice.JAVA, 40, d);
        assertEquals("java", d[0]);
        float[][] nat = logits(m, 1, Choice.NATIVE, 40, d);
        assertTrue(d[0].startsWith("native (oneDNN 2."), d[0]);
        assertClose(java, nat, "native TP 1", true);
        assertClose(java, logits(m, 2, Choice.NATIVE, 40, d), "native TP 2", true);
        assertClose(nat, logits(m, 2, Choice.AUTO, 40, d), "auto TP 2 against native TP 1");
    }

    @Test
    void q8ModelRunsItsLongProductsNatively() {
        DnnlTestLibrary.require();
        Supplier<TensorSource> m = () -> QuantizingSource.of(new SynthModel(EngineTest.C, DType.F32, 7), GgufRecipe.parse("q8_0"));
        int n = NativeKernels.MIN_TOKENS_Q8_0 + 9;
        String[] d = new String[1];
        assertClose(logits(m, 1, Choice.JAVA, n, d), logits(m, 1, Choice.NATIVE, n, d), "q8_0 native", true);
        TpGroup.Options o = TpGroup.Options.single(1).withKernels(Choice.NATIVE);
        try (TpGroup g = TpGroup.threads(m, o)) {
            var w = g.rootModel().weights();
            assertInstanceOf(DnnlWeight.class, w.layers()[0].wGateUp());
            assertEquals("q8_0", w.layers()[0].wGateUp().format(), "reports keep the stored format");
        }
    }

    /** bf16 copies of quantized weights: short products (fewer tokens than the dequantizing path takes) run natively. */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"q8_0", "q4_k_m"})
    void quantizedModelWithBf16CopiesMatchesJavaAtTpOneAndTwo(String recipe) {
        DnnlTestLibrary.require();
        Supplier<TensorSource> m = () -> QuantizingSource.of(new SynthModel(EngineTest.C, DType.F32, 9), GgufRecipe.parse(recipe));
        int n = NativeKernels.MIN_TOKENS_COPY_Q8_0 + 3;                    // below both dequantizing thresholds
        assertTrue(n < NativeKernels.MIN_TOKENS_DEQUANTIZED && n < NativeKernels.MIN_TOKENS_Q8_0);
        String[] d = new String[1];
        float[][] ref = logits(m, 1, Choice.JAVA, n, d);
        float[][] copied = logits(m, 1, Choice.NATIVE, NativeKernels.Copies.BF16, n, d);
        assertTrue(d[0].matches("native \\(oneDNN .*\\); bf16 copies of quantized matrices: \\d+\\.\\d MiB"), d[0]);
        for (int i = 0; i < n; i++) assertFalse(java.util.Arrays.equals(ref[i], copied[i]), recipe + ": position " + i + " ran on the Java kernels");
        assertClose(ref, copied, recipe + " bf16 copies TP 1");
        assertClose(ref, logits(m, 2, Choice.NATIVE, NativeKernels.Copies.BF16, n, d), recipe + " bf16 copies TP 2");
        assertArrayEquals(ref[0], logits(m, 1, Choice.NATIVE, NativeKernels.Copies.NONE, n, d)[0], "without copies these products stay on Java");
        var bad = assertThrows(IllegalArgumentException.class, () -> NativeKernels.Copies.parse("int8"));
        assertEquals("--native-copies must be none or bf16, got 'int8'", bad.getMessage());
    }

    @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir;

    /** Adapters on a bf16 base under each sharding at TP 2 on the native kernels, against TP 1 on the Java kernels. */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = LoraSharding.class, names = {"REPLICATED", "SLORA", "BDLORA"})
    void adaptersOnANativeBaseMatchTheJavaKernelsUnderEachSharding(LoraSharding sharding) {
        DnnlTestLibrary.require();
        var c = TpEquivalenceTest.TP;
        String[][] specs = {{"b1", "16", "4", "all"}, {"b2", "8", "4", "q,v,down"}};
        java.util.List<float[]> ref, got;
        try (TpGroup g = TpGroup.threads(() -> new SynthModel(c, DType.BF16, 21), new TpGroup.Options(1, 2, LoraSharding.AUTO, LoraSharding.REPLICATED, 0))) {
            for (String[] sp : specs) g.addAdapter(adapter(c, sp));
            ref = TpScript.run(g, new int[]{0, 1, 0, -1});
        }
        try (TpGroup g = TpGroup.threads(() -> new SynthModel(c, DType.BF16, 21),
                new TpGroup.Options(2, 1, sharding, LoraSharding.REPLICATED, 0).withKernels(Choice.NATIVE))) {
            for (String[] sp : specs) g.addAdapter(adapter(c, sp));
            got = TpScript.run(g, new int[]{0, 1, 0, -1});
        }
        assertClose(ref.toArray(float[][]::new), got.toArray(float[][]::new), sharding + " native TP 2", true);
    }

    private dev.bdserve.lora.LoraAdapter adapter(dev.bdserve.model.LlamaConfig c, String[] sp) {
        java.nio.file.Path p = dir.resolve(sp[0]);
        new dev.bdserve.lora.SynthAdapter(Integer.parseInt(sp[1]), Integer.parseInt(sp[2]), dev.bdserve.lora.SynthAdapter.parseTargets(sp[3]),
                DType.F32, Integer.parseInt(sp[1]), false, 0.3, sp[0].hashCode()).write(p, c, "test");
        return dev.bdserve.lora.PeftAdapterLoader.load(sp[0], p, c, 64);
    }

    @Test
    void nativeWithoutTheLibraryIsRefusedWithTheReasonAndAutoSaysWhyItKeptJava() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> NativeKernels.resolve(Choice.NATIVE, new Dnnl.Unavailable("libdnnl.so.2 was not found")));
        assertEquals("--kernels native: libdnnl.so.2 was not found", e.getMessage());
        NativeKernels auto = NativeKernels.resolve(Choice.AUTO, new Dnnl.Unavailable("libdnnl.so.2 was not found"));
        assertFalse(auto.isNative());
        assertEquals("java (oneDNN not used: libdnnl.so.2 was not found)", auto.description());
        assertEquals("java", NativeKernels.resolve(Choice.JAVA, new Dnnl.Unavailable("x")).description());
        assertEquals("java (oneDNN not used: libdnnl.so.2 was not found); no bf16 copies made: the Java kernels multiply the quantized blocks",
                NativeKernels.resolve(Choice.AUTO, new Dnnl.Unavailable("libdnnl.so.2 was not found"), NativeKernels.Copies.BF16).description());
        var contradictory = assertThrows(IllegalArgumentException.class,
                () -> NativeKernels.resolve(Choice.JAVA, new Dnnl.Unavailable("x"), NativeKernels.Copies.BF16));
        assertEquals("--native-copies bf16 needs the native kernels (--kernels auto or native): --kernels java multiplies the quantized blocks themselves",
                contradictory.getMessage());
        var bad = assertThrows(IllegalArgumentException.class, () -> Choice.parse("gpu"));
        assertEquals("--kernels must be auto, java or native, got 'gpu'", bad.getMessage());
    }
}
