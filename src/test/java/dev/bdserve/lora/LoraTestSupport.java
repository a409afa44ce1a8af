package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ReferenceLlama;
import dev.bdserve.model.TensorSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Builds the fp64 reference with merged weights W + s·B·A for any set of adapters' dense expansions. */
final class LoraTestSupport {
    private LoraTestSupport() {}

    /** The reference model whose projections are W + s·B·A of the adapter (null: base only). */
    static ReferenceLlama merged(TensorSource base, LoraAdapter a) {
        LlamaConfig c = base.config();
        Map<String, double[][]> cache = new HashMap<>();
        return new ReferenceLlama(c, name -> cache.computeIfAbsent(name, n -> {
            double[][] w = ReferenceLlama.toDouble(base.matrix(n));
            if (a == null) return w;
            // each projection's W + s·B·A, at its rows of a fused weight (Phi-3's qkv_proj, gate_up_proj)
            for (int l = 0; l < c.numLayers(); l++)
                for (String peft : LoraModule.peftNames(c)) {
                    if (!(LoraModule.peftPath(l, peft) + ".weight").equals(n)) continue;
                    for (LoraModule.Part p : LoraModule.parts(peft, c)) {
                        LoraWeights lw = a.get(l, p.module());
                        if (lw == null) continue;
                        double[][] A = lw.denseA(), B = lw.denseB();
                        for (int o = 0; o < B.length; o++)
                            for (int i = 0; i < w[p.row() + o].length; i++) {
                                double s = 0;
                                for (int k = 0; k < lw.rank(); k++) s += B[o][k] * A[k][i];
                                w[p.row() + o][i] += s;
                            }
                    }
                }
            return w;
        }), n -> { float[] f = base.vector(n); double[] d = new double[f.length]; for (int i = 0; i < f.length; i++) d[i] = f[i]; return d; });
    }

    static double maxAbs(double[][] a) {
        double m = 0;
        for (double[] r : a) for (double v : r) m = Math.max(m, Math.abs(v));
        return m;
    }

    static List<String> all() { return List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"); }
}
