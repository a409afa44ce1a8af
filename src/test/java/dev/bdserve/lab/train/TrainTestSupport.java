package dev.bdserve.lab.train;

import dev.bdserve.lora.LoraModule;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ReferenceLlama;
import dev.bdserve.model.TensorSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** Tiny models, random non-zero adapters and the fp64 reference loss of an adapter for the training tests. */
final class TrainTestSupport {
    private TrainTestSupport() {}

    /** A tiny GQA Llama whose dimensions split into 2 blocks: d 16, ffn 24, 4 heads of 4, 2 KV heads, untied head. */
    static LlamaConfig tinyConfig() {
        return new LlamaConfig(32, 16, 24, 2, 4, 2, 4, 64, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    }

    /** Fills every factor (A and B) with U(−scale, scale) so that all gradients are non-zero. */
    static void randomize(TrainableAdapter a, long seed, double scale) {
        SplittableRandom r = new SplittableRandom(seed);
        for (float[] p : a.parameters()) for (int i = 0; i < p.length; i++) p[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
    }

    static List<double[]> toDouble(List<float[]> ps) {
        return ps.stream().map(p -> { double[] d = new double[p.length]; for (int i = 0; i < p.length; i++) d[i] = p[i]; return d; }).toList();
    }

    /**
     * The fp64 loss Σ w·CE / Σ w of the adapter whose parameters (in {@link TrainableAdapter#parameters()} order)
     * are {@code params}, through {@link ReferenceLlama} (HF modeling_llama) with merged weights W + s·B·A,
     * where the block-diagonal factors are expanded here from spec §3's packing rule (independently of
     * {@link LoraFactor}'s offsets).
     */
    static double referenceLoss(TensorSource base, TrainableAdapter shape, List<double[]> params, int[] tokens, float[] weights) {
        LlamaConfig c = base.config();
        Map<String, double[][]> merged = new HashMap<>();
        int p = 0;
        for (int l = 0; l < c.numLayers(); l++)
            for (LoraModule m : LoraModule.values()) {
                LoraFactor f = shape.get(l, m);
                if (f == null) continue;
                double[] a = params.get(p++), b = params.get(p++);
                int r = f.rank(), in = f.in(), out = f.out();
                double[][] A = new double[r][in], B = new double[out][r];
                int na = f.aBlocks(), nb = f.bBlocks();
                for (int k = 0; k < r; k++)                      // packed A [r, in/na]: row k is block k/(r/na), input cols block·in/na ..
                    for (int col = 0; col < in / na; col++) A[k][(k / (r / na)) * (in / na) + col] = a[k * (in / na) + col];
                for (int o = 0; o < out; o++)                    // packed B [out, r/nb]: row o is block o/(out/nb), rank cols block·r/nb ..
                    for (int col = 0; col < r / nb; col++) B[o][(o / (out / nb)) * (r / nb) + col] = b[o * (r / nb) + col];
                double[][] W = ReferenceLlama.toDouble(base.matrix(m.path(l) + ".weight"));
                double s = f.scaling();
                for (int o = 0; o < out; o++)
                    for (int i = 0; i < in; i++) {
                        double acc = 0;
                        for (int k = 0; k < r; k++) acc += B[o][k] * A[k][i];
                        W[o][i] += s * acc;
                    }
                merged.put(m.path(l) + ".weight", W);
            }
        ReferenceLlama ref = new ReferenceLlama(c, n -> merged.containsKey(n) ? merged.get(n) : ReferenceLlama.toDouble(base.matrix(n)),
                n -> { float[] f = base.vector(n); double[] d = new double[f.length]; for (int i = 0; i < f.length; i++) d[i] = f[i]; return d; });
        int T = tokens.length - 1;
        double[][] logits = ref.logits(java.util.Arrays.copyOf(tokens, T));
        double sum = 0, wsum = 0;
        for (int t = 0; t < T; t++) {
            if (weights[t] == 0) continue;
            double max = Double.NEGATIVE_INFINITY;
            for (double v : logits[t]) max = Math.max(max, v);
            double z = 0;
            for (double v : logits[t]) z += Math.exp(v - max);
            sum += weights[t] * (max + Math.log(z) - logits[t][tokens[t + 1]]);
            wsum += weights[t];
        }
        return sum / wsum;
    }
}
