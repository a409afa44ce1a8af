package dev.bdserve.lab.train;

import dev.bdserve.lora.LoraModule;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The trainer's fp32 backward against central finite differences of the fp64 reference loss
 * ({@link dev.bdserve.model.ReferenceLlama}, HF modeling_llama, with merged W + s·B·A), for every parameter
 * kind: dense A and B, packed BD-A (o, down) and packed BD-B (q, k, v, gate, up) on all seven projections.
 */
class GradientCheckTest {
    private static final LlamaConfig C = TrainTestSupport.tinyConfig();
    private static final SynthModel BASE = new SynthModel(C, DType.F32, 7);
    private static final LlamaBackprop MODEL = new LlamaBackprop(FrozenLlama.load(BASE));
    private static final int[] TOKENS = {1, 5, 17, 3, 30, 9, 22, 4, 11};
    private static final float[] WEIGHTS = {0, 1, 1, 0, 1, 1, 1, 0.5f};   // a loss mask with zeros and a fractional weight

    private static TrainableAdapter adapter(LoraSpec.Method method, int nblocks, boolean rslora) {
        TrainableAdapter a = new TrainableAdapter(new LoraSpec(method, 4, nblocks, 8, rslora, EnumSet.allOf(LoraModule.class)), C);
        TrainTestSupport.randomize(a, 11, 0.3);  // B non-zero, or A would get no gradient
        return a;
    }

    private static double analytic(TrainableAdapter a) {
        a.zeroGrad();
        double wsum = 0;
        for (float x : WEIGHTS) wsum += x;
        LlamaBackprop.Loss l = MODEL.run(TOKENS, WEIGHTS, a, a, (float) (1 / wsum), MODEL.newWorkspace());
        return l.sum() / l.weight();
    }

    @ParameterizedTest(name = "{0} nblocks={1} rslora={2}")
    @CsvSource({"LORA,1,false", "BDLORA,2,false", "BDLORA,2,true"})
    void gradientsMatchFiniteDifferences(LoraSpec.Method method, int nblocks, boolean rslora) {
        TrainableAdapter a = adapter(method, nblocks, rslora);
        double loss = analytic(a);
        List<double[]> p64 = new ArrayList<>(TrainTestSupport.toDouble(a.parameters()));
        double ref = TrainTestSupport.referenceLoss(BASE, a, p64, TOKENS, WEIGHTS);
        assertEquals(ref, loss, 1e-5 * Math.abs(ref), "fp32 trainer loss vs fp64 reference");

        List<float[]> grads = a.gradients();
        double gmax = 0;
        for (float[] g : grads) for (float v : g) gmax = Math.max(gmax, Math.abs(v));
        SplittableRandom pick = new SplittableRandom(3);
        double eps = 1e-5;
        int checked = 0;
        List<LoraFactor> factors = a.all();
        for (int f = 0; f < factors.size(); f++)
            for (int which = 0; which < 2; which++) {          // 0: A, 1: B
                int idx = 2 * f + which;
                double[] p = p64.get(idx);
                for (int s = 0; s < 3; s++) {
                    int i = pick.nextInt(p.length);
                    double orig = p[i];
                    p[i] = orig + eps;
                    double up = TrainTestSupport.referenceLoss(BASE, a, p64, TOKENS, WEIGHTS);
                    p[i] = orig - eps;
                    double down = TrainTestSupport.referenceLoss(BASE, a, p64, TOKENS, WEIGHTS);
                    p[i] = orig;
                    double fd = (up - down) / (2 * eps);
                    double g = grads.get(idx)[i];
                    LoraFactor lf = factors.get(f);
                    String what = lf.module() + (which == 0 ? ".A" : ".B") + "[" + i + "] (aBlocks " + lf.aBlocks() + ", bBlocks " + lf.bBlocks() + ")";
                    assertEquals(fd, g, 1e-4 * gmax + 1e-3 * Math.abs(fd), what);
                    checked++;
                }
            }
        assertTrue(checked >= 7 * 2 * 2 * 3);
        assertTrue(gmax > 1e-3, "gradients are not trivially zero");
    }

    /** A BD factor's gradient equals the gradient of the dense adapter initialised to its block-diagonal expansion, on the diagonal blocks. */
    @Test
    void bdGradientIsTheDenseGradientOnTheDiagonalBlocks() {
        int n = 2;
        TrainableAdapter bd = adapter(LoraSpec.Method.BDLORA, n, false);
        TrainableAdapter dense = new TrainableAdapter(new LoraSpec(LoraSpec.Method.LORA, 4, 1, 8, false, EnumSet.allOf(LoraModule.class)), C);
        for (int l = 0; l < C.numLayers(); l++)
            for (LoraModule m : LoraModule.values()) {
                LoraFactor p = bd.get(l, m), q = dense.get(l, m);
                for (int k = 0; k < p.rank(); k++)
                    for (int c = 0; c < p.aCols(); c++) q.a()[k * q.aCols() + p.aInputOffset(k) + c] = p.a()[k * p.aCols() + c];
                for (int o = 0; o < p.out(); o++)
                    for (int c = 0; c < p.bCols(); c++) q.b()[o * q.bCols() + p.bRankOffset(o) + c] = p.b()[o * p.bCols() + c];
            }
        double lb = analytic(bd), ld = analytic(dense);
        assertEquals(lb, ld, 1e-6 * Math.abs(lb), "same function");
        double gmax = 0;
        for (float[] g : dense.gradients()) for (float v : g) gmax = Math.max(gmax, Math.abs(v));
        int offDiagonalNonZero = 0;
        for (int l = 0; l < C.numLayers(); l++)
            for (LoraModule m : LoraModule.values()) {
                LoraFactor p = bd.get(l, m), q = dense.get(l, m);
                boolean[] onA = new boolean[q.gradA().length], onB = new boolean[q.gradB().length];
                for (int k = 0; k < p.rank(); k++)
                    for (int c = 0; c < p.aCols(); c++) {
                        int j = k * q.aCols() + p.aInputOffset(k) + c;
                        onA[j] = true;
                        assertEquals(q.gradA()[j], p.gradA()[k * p.aCols() + c], 1e-5 * gmax, m + ".A grad on the diagonal");
                    }
                for (int o = 0; o < p.out(); o++)
                    for (int c = 0; c < p.bCols(); c++) {
                        int j = o * q.bCols() + p.bRankOffset(o) + c;
                        onB[j] = true;
                        assertEquals(q.gradB()[j], p.gradB()[o * p.bCols() + c], 1e-5 * gmax, m + ".B grad on the diagonal");
                    }
                for (int j = 0; j < onA.length; j++) if (!onA[j] && Math.abs(q.gradA()[j]) > 1e-4 * gmax) offDiagonalNonZero++;
                for (int j = 0; j < onB.length; j++) if (!onB[j] && Math.abs(q.gradB()[j]) > 1e-4 * gmax) offDiagonalNonZero++;
            }
        assertTrue(offDiagonalNonZero > 0, "the dense gradient leaves the pattern (so the restriction is what makes them equal)");
    }
}
