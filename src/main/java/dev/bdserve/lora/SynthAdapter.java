package dev.bdserve.lora;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Random PEFT adapters, ordinary or BD-LoRA, with non-zero B so that their effect on the output is visible
 * (a freshly initialised PEFT adapter has B = 0). Deterministic from the seed.
 *
 * @param rank       r
 * @param nblocks    0 or 1 for an ordinary adapter; n ≥ 2 for BD-LoRA with n blocks
 * @param targets    modules to adapt
 * @param dtype      storage dtype
 * @param alpha      lora_alpha
 * @param rslora     use_rslora
 * @param strength   standard deviation of the LoRA delta relative to the base projection's output (≈)
 * @param seed       random seed
 */
public record SynthAdapter(int rank, int nblocks, Set<LoraModule> targets, DType dtype, double alpha, boolean rslora,
                           double strength, long seed) {
    public SynthAdapter {
        if (rank < 1) throw new IllegalArgumentException("rank must be ≥ 1");
        if (nblocks > 1 && rank % nblocks != 0) throw new IllegalArgumentException("rank " + rank + " is not divisible by nblocks " + nblocks);
        if (targets.isEmpty()) throw new IllegalArgumentException("no target modules");
        targets = Set.copyOf(targets);
    }

    /** All seven projections. */
    public static Set<LoraModule> allModules() { return EnumSet.allOf(LoraModule.class); }

    /** Parses "q,k,v,o,gate,up,down" or "all". */
    public static Set<LoraModule> parseTargets(String s) {
        if (s == null || s.isBlank() || s.equals("all") || s.equals("all-linear")) return allModules();
        Set<LoraModule> out = EnumSet.noneOf(LoraModule.class);
        for (String p : s.split(",")) {
            LoraModule m = LoraModule.byName(p.trim());
            if (m == null) throw new IllegalArgumentException("unknown module '" + p + "' (expected q, k, v, o, gate, up, down)");
            out.add(m);
        }
        return out;
    }

    /**
     * PEFT-layout tensors (B unscaled) for a base model. A model with fused projections (Phi-3) gets one dense factor
     * pair per fused module that holds a targeted part, B with the rows of all its parts (BD-LoRA only on o and down).
     */
    public Map<String, Matrix> tensors(LlamaConfig c) {
        Map<String, Matrix> t = new LinkedHashMap<>();
        double s = rslora ? alpha / Math.sqrt(rank) : alpha / rank;
        int n = Math.max(1, nblocks);
        for (int l = 0; l < c.numLayers(); l++)
            for (String name : LoraModule.peftNames(c)) {
                List<LoraModule.Part> parts = LoraModule.parts(name, c);
                if (parts.size() == 1) continue;
                if (parts.stream().noneMatch(p -> targets.contains(p.module()))) continue;
                LoraModule first = parts.getFirst().module();
                int in = first.in(c), out = parts.stream().mapToInt(p -> p.module().out(c)).sum();
                SplittableRandom r = new SplittableRandom(seed * 1_000_003L + l * 31L + first.ordinal());
                String prefix = "base_model.model." + LoraModule.peftPath(l, name);
                t.put(prefix + ".lora_A.weight", random(r, rank, in, 1 / Math.sqrt(in)));
                t.put(prefix + ".lora_B.weight", random(r, out, rank, strength / (s * Math.sqrt(rank))));
            }
        for (int l = 0; l < c.numLayers(); l++)
            for (LoraModule m : LoraModule.values()) {
                if (!targets.contains(m) || LoraModule.parts(m.projName(), c) == null) continue;    // fused above
                int in = m.in(c), out = m.out(c);
                boolean bdA = n > 1 && !m.columnParallel(), bdB = n > 1 && m.columnParallel();
                if (bdA && in % n != 0 || bdB && out % n != 0)
                    throw new IllegalArgumentException(m + " has " + (bdA ? "in" : "out") + "_features " + (bdA ? in : out) + ", not divisible by nblocks " + n);
                int aCols = bdA ? in / n : in, bCols = bdB ? rank / n : rank;
                SplittableRandom r = new SplittableRandom(seed * 1_000_003L + l * 31L + m.ordinal());
                // A: std 1/sqrt(fan-in) so x·Aᵀ is O(1); B: so that s·B·(A x) has std ≈ strength.
                t.put(PeftAdapterWriter.tensorName(l, m, true), random(r, rank, aCols, 1 / Math.sqrt(aCols)));
                t.put(PeftAdapterWriter.tensorName(l, m, false), random(r, out, bCols, strength / (s * Math.sqrt(bCols))));
            }
        return t;
    }

    private Matrix random(SplittableRandom r, int rows, int cols, double std) {
        float a = (float) (std * Math.sqrt(3));
        float[] f = new float[rows * cols];
        for (int i = 0; i < f.length; i++) f[i] = (r.nextFloat() * 2 - 1) * a;
        return Matrix.fromFloats(dtype, rows, cols, f);
    }

    /** The adapter_config.json for a Llama-layout model. */
    public ObjectNode config(String baseModel) {
        List<String> names = targets.stream().sorted().map(LoraModule::projName).toList();
        ObjectNode c = PeftAdapterWriter.baseConfig(rank, alpha, names, rslora, baseModel);
        if (nblocks > 1) PeftAdapterWriter.addBdConfig(c, nblocks);
        return c;
    }

    /** The adapter_config.json for base model {@code m}: its module names (fused ones for Phi-3), BD-LoRA where it has the modules. */
    public ObjectNode config(LlamaConfig m, String baseModel) {
        if (!m.variant().fusedQkv() && !m.variant().fusedGateUp()) return config(baseModel);
        List<String> names = LoraModule.peftNames(m).stream()
                .filter(n -> LoraModule.parts(n, m).stream().anyMatch(p -> targets.contains(p.module()))).toList();
        ObjectNode c = PeftAdapterWriter.baseConfig(rank, alpha, names, rslora, baseModel);
        if (nblocks > 1)
            PeftAdapterWriter.addBdConfig(c, nblocks, names.stream()
                    .filter(n -> LoraModule.parts(n, m).size() == 1 && LoraModule.parts(n, m).getFirst().module().columnParallel()).toList());
        return c;
    }

    /** Writes the adapter folder. */
    public void write(Path dir, LlamaConfig c, String baseModel) {
        PeftAdapterWriter.write(dir, config(c, baseModel), tensors(c));
    }
}
