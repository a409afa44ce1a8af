package dev.bdserve.model.gguf;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ReferenceLlama;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.gguf.LlamaCppLogits.Step;
import dev.bdserve.model.gguf.LlamaCppQuantize.Ftype;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import dev.bdserve.tensor.Matrix;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * bdserve and llama.cpp on the same GGUF files, logit by logit. A random Llama (hidden and intermediate sizes whole
 * K-quant super-blocks, so the K-quant recipes really write K-quant tensors) is written as F32 GGUF by bdserve and
 * quantized by llama.cpp's own {@code llama_model_quantize}. On each file llama.cpp continues a prompt greedily, and
 * bdserve, fed the same tokens, must give at every step
 * <ul>
 *   <li>logits within {@code tol × (max − min)} of llama.cpp's row;</li>
 *   <li>the same argmax wherever llama.cpp's top-1 log-prob is more than {@value #CLEAR_MARGIN} above its top-2
 *       (and at least {@value #MIN_CLEAR_STEPS} steps must be that clear);</li>
 *   <li>the logits of an fp64 reference forward pass on the file's dequantized weights within 1e-5 of the range:
 *       bdserve's own arithmetic error, far below what llama.cpp differs by.</li>
 * </ul>
 * The two engines multiply the same weights; what separates them is that llama.cpp's CPU backend rounds each matrix
 * product's input to the weight type's partner (f16, bf16, 8-bit blocks: {@link LlamaCppActivations}). For Q8_0 that
 * rounding alone moves llama.cpp's logits by 1.2–1.4 % of the range on this model (six seeds measured), above the
 * 1e-2 tolerance asked for (and about what it does for Q4_0 and Q5_0, which round activations the same way). BF16's
 * bf16 activations come close to its 5e-3: 4.7e-3 here, 4.2–5.9e-3 over the six seeds. So
 * for Q8_0 and BF16 the bound applies to bdserve's logits plus the modelled effect of that rounding (the fp64
 * reference with and without it): that reproduces llama.cpp's Q8_0 logits to 4e-8 of the range at 31 of the 32 steps
 * and 9e-5 at the other (a rounding that lands the other way); BF16's to 3.2e-3. The raw ratio is reported in the
 * messages.
 */
class GgufLlamaCppParityTest {
    static final LlamaConfig C = new LlamaConfig(512, 256, 512, 2, 4, 2, 64, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    static final int STEPS = 32, MIN_CLEAR_STEPS = 12;
    static final double CLEAR_MARGIN = 0.15, OWN_TOL = 1e-5, OWN_TOL_INT8_ACTIVATIONS = 3e-2;
    /** The final norm's weights are scaled by this: sharper next-token distributions (every ratio checked is scale-free). */
    static final float HEAD_GAIN = 2f;
    static final int[] PROMPT = prompt(8, 11);

    @TempDir static Path dir;
    /** The file of each case, and llama.cpp's greedy steps on it. */
    static final Map<Case, Path> FILES = new EnumMap<>(Case.class);
    static final Map<Case, List<Step>> LLAMA = new EnumMap<>(Case.class);

    /**
     * A file type: llama.cpp's ftype (null: bdserve's F32 file as written), the tolerance, the tensor types the
     * recipe gives this model (the LM head of the 32-block types is Q6_K; Q4_K_M and Q5_K_M put Q6_K in the second
     * layer's attn_v and ffn_down), and whether llama.cpp's activation rounding is modelled before comparing.
     */
    enum Case {
        F32(null, 1e-3, EnumSet.of(GgmlType.F32), false),
        F16(Ftype.F16, 5e-3, EnumSet.of(GgmlType.F32, GgmlType.F16), false),
        BF16(Ftype.BF16, 5e-3, EnumSet.of(GgmlType.F32, GgmlType.BF16), true),
        Q8_0(Ftype.Q8_0, 1e-2, EnumSet.of(GgmlType.F32, GgmlType.Q8_0), true),
        Q4_0(Ftype.Q4_0, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q4_0, GgmlType.Q6_K), false),
        Q4_1(Ftype.Q4_1, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q4_1, GgmlType.Q6_K), false),
        Q5_0(Ftype.Q5_0, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q5_0, GgmlType.Q6_K), false),
        Q5_1(Ftype.Q5_1, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q5_1, GgmlType.Q6_K), false),
        Q4_K_M(Ftype.Q4_K_M, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q4_K, GgmlType.Q6_K), false),
        Q5_K_M(Ftype.Q5_K_M, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q5_K, GgmlType.Q6_K), false),
        Q6_K(Ftype.Q6_K, 3e-2, EnumSet.of(GgmlType.F32, GgmlType.Q6_K), false);

        final Ftype ftype;
        final double tol;
        final Set<GgmlType> types;
        final boolean modelRounding;

        Case(Ftype ftype, double tol, Set<GgmlType> types, boolean modelRounding) {
            this.ftype = ftype;
            this.tol = tol;
            this.types = types;
            this.modelRounding = modelRounding;
        }
    }

    /** bdserve writes the F32 file, llama.cpp quantizes it to every type (in parallel) and runs all files in one node process. */
    @BeforeAll
    static void prepare() {
        Path f32 = writeF32(dir);
        for (Case c : Case.values()) FILES.put(c, c.ftype == null ? f32 : dir.resolve("synth-" + c.ftype.label() + ".gguf"));
        Arrays.stream(Case.values()).filter(c -> c.ftype != null).parallel()
                .forEach(c -> LlamaCppQuantize.quantize(f32, FILES.get(c), c.ftype));
        List<List<Step>> runs = LlamaCppLogits.llamaCpp(C.vocabSize(), PROMPT, STEPS,
                Arrays.stream(Case.values()).map(FILES::get).toArray(Path[]::new));
        for (Case c : Case.values()) LLAMA.put(c, runs.get(c.ordinal()));
    }

    /** bdserve's F32 GGUF of the random model (final norm scaled by {@link #HEAD_GAIN}), with a synthetic tokenizer's metadata. */
    static Path writeF32(Path dir) {
        SynthTokenizer.write(dir, C.vocabSize());
        Tokenizer tok = Tokenizers.load(dir.resolve("tokenizer.bin"));
        Path f = dir.resolve("synth-f32.gguf");
        GgufModelWriter.write(f, new ScaledNorm(new SynthModel(C, DType.F32, 7), LlamaTensorNames.FINAL_NORM, HEAD_GAIN), GgmlType.F32,
                "synth", w -> GgufTokenizers.writeMetadata(tok, w));
        return f;
    }

    /** A source with one norm vector multiplied by a gain. */
    record ScaledNorm(TensorSource base, String name, float gain) implements TensorSource {
        @Override public LlamaConfig config() { return base.config(); }
        @Override public Set<String> names() { return base.names(); }
        @Override public long[] shape(String n) { return base.shape(n); }
        @Override public Matrix matrix(String n, int r0, int r1, int c0, int c1) { return base.matrix(n, r0, r1, c0, c1); }
        @Override public DType dtype(String n) { return base.dtype(n); }
        @Override public String describe() { return base.describe() + ", " + name + " ×" + gain; }
        @Override public void close() { base.close(); }

        @Override public float[] vector(String n) {
            float[] v = base.vector(n);
            if (n.equals(name)) for (int i = 0; i < v.length; i++) v[i] *= gain;
            return v;
        }
    }

    /** BOS, then random ids past the special ones. */
    static int[] prompt(int len, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] p = new int[len];
        p[0] = 1;
        for (int i = 1; i < len; i++) p[i] = 3 + r.nextInt(C.vocabSize() - 3);
        return p;
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Case.class)
    void bdserveGivesLlamaCppsLogitsOnLlamaCppsQuantization(Case c) {
        Path model = FILES.get(c);
        assertEquals(c.types, LlamaCppQuantize.tensorTypes(model), () -> c + ": the tensor types of the file: " + LlamaCppQuantize.describeTypes(model));
        check(c, LlamaCppLogits.bdserve(model, PROMPT, LLAMA.get(c)), "in one pass", OWN_TOL);
    }

    /**
     * The same, decoded one token per forward pass as a server decodes, so the one-token kernels run. Those of Q4_K
     * and Q6_K round each activation block to int8 (at most max|x|/254 per value), as llama.cpp rounds them to Q8_K:
     * that moves bdserve's logits away from the fp64 reference on the same weights, so there the bound is the
     * 4–6-bit tolerance against llama.cpp, {@value #OWN_TOL_INT8_ACTIVATIONS} of the range, instead of
     * {@value #OWN_TOL}; the bounds against llama.cpp itself are those of the one-pass test.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(Case.class)
    void decodedTokenByTokenToo(Case c) {
        boolean int8Activations = c.types.contains(GgmlType.Q4_K) || c.types.contains(GgmlType.Q6_K);
        check(c, LlamaCppLogits.bdserveStepwise(FILES.get(c), PROMPT, LLAMA.get(c)), "token by token",
                int8Activations ? OWN_TOL_INT8_ACTIVATIONS : OWN_TOL);
    }

    /** Checks bdserve's logits {@code ours} [step][vocab] against llama.cpp's steps and the fp64 reference. */
    static void check(Case c, float[][] ours, String how, double ownTol) {
        Path model = FILES.get(c);
        int[] prompt = PROMPT;
        List<Step> steps = LLAMA.get(c);
        int[] fed = LlamaCppLogits.fedTokens(prompt, steps);
        double[][] exact, rounded = null;
        try (TensorSource src = ModelFiles.open(model)) {
            ReferenceLlama ref = new ReferenceLlama(src);
            exact = ref.logits(fed);
            if (c.modelRounding) {
                Map<String, GgmlType> types = weightTypes(model);
                rounded = ref.withInputRounding((name, row) -> LlamaCppActivations.round(types.get(name), row)).logits(fed);
            }
        }

        // per step: bdserve vs llama.cpp (raw, and with llama.cpp's rounding modelled), bdserve vs the fp64 reference
        double[] raw = new double[STEPS], modelled = new double[STEPS], own = new double[STEPS];
        int clear = 0;
        StringBuilder trace = new StringBuilder();
        for (int s = 0; s < STEPS; s++) {
            Step st = steps.get(s);
            int pos = prompt.length - 1 + s;
            double range = st.range();
            raw[s] = LlamaCppLogits.maxAbsDiff(st.logits(), ours[s]) / range;
            own[s] = maxAbsDiff(ours[s], exact[pos]) / range;
            if (rounded != null) {
                double m = 0;
                for (int v = 0; v < C.vocabSize(); v++)
                    m = Math.max(m, Math.abs(ours[s][v] + (rounded[pos][v] - exact[pos][v]) - st.logits()[v]));
                modelled[s] = m / range;
            }
            if (st.margin() > CLEAR_MARGIN) clear++;
            trace.append(String.format("%n  step %2d: token %3d (bdserve's argmax %3d), top-1 margin %.3f, range %.2f, |Δ|/range %.2e%s, "
                            + "vs fp64 reference %.1e", s, st.token(), LlamaCppLogits.argmax(ours[s]), st.margin(), range, raw[s],
                    rounded != null ? String.format(" (rounding modelled: %.2e)", modelled[s]) : "", own[s]));
        }
        double worstRaw = max(raw), worstModelled = max(modelled), worstOwn = max(own);
        String summary = String.format("%s %s: worst max|Δlogit|/range %.3e vs llama.cpp%s, %.1e vs the fp64 reference; %d of %d steps clear",
                c, how, worstRaw, c.modelRounding ? String.format(" (%.3e with its activation rounding modelled)", worstModelled) : "",
                worstOwn, clear, STEPS);
        System.out.println(summary);

        for (int s = 0; s < STEPS; s++) {
            Step st = steps.get(s);
            int step = s;
            assertTrue(own[s] <= ownTol, () -> String.format("%s step %d: bdserve's logits differ from the fp64 reference on the same weights by "
                    + "%.2e of the range%n%s%s", c, step, own[step], summary, trace));
            double checked = c.modelRounding ? modelled[s] : raw[s];
            assertTrue(checked <= c.tol, () -> String.format("%s step %d: max |Δlogit| / (max − min) = %.3e > %.0e%n%s%s",
                    c, step, checked, c.tol, summary, trace));
            if (st.margin() > CLEAR_MARGIN)
                assertEquals(st.token(), LlamaCppLogits.argmax(ours[s]), () -> String.format("%s step %d: argmax at top-1 margin %.3f%n%s%s",
                        c, step, st.margin(), summary, trace));
        }
        int clearSteps = clear;
        assertTrue(clear >= MIN_CLEAR_STEPS, () -> String.format("%s: only %d of %d steps have a top-1 margin above %.2f%n%s%s",
                c, clearSteps, STEPS, CLEAR_MARGIN, summary, trace));
    }

    /** The GGUF type of every matrix, by its HF name. */
    static Map<String, GgmlType> weightTypes(Path model) {
        Map<String, GgmlType> types = new HashMap<>();
        try (GgufFile f = GgufFile.open(model)) {
            for (String hf : LlamaTensorNames.expectedShapes(C).keySet()) types.put(hf, f.tensor(GgufModelSource.ggufName(hf)).type());
        }
        return types;
    }

    static double maxAbsDiff(float[] a, double[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    static double max(double[] v) {
        double m = 0;
        for (double x : v) m = Math.max(m, x);
        return m;
    }
}
