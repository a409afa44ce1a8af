package dev.bdserve.lab.train;

import dev.bdserve.lora.LoraModule;
import dev.bdserve.model.LlamaConfig;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * What adapter to train: ordinary LoRA or BD-LoRA (spec §2: B block-diagonal in q, k, v, gate, up; A
 * block-diagonal in o, down), its rank, alpha and targets. Validated on construction.
 *
 * @param method  LORA or BDLORA
 * @param rank    r (a multiple of nblocks for BD-LoRA)
 * @param nblocks blocks of the block-diagonal factors (1 for LoRA)
 * @param alpha   lora_alpha
 * @param rslora  scaling alpha/sqrt(r) instead of alpha/r
 * @param targets the adapted projections
 */
public record LoraSpec(Method method, int rank, int nblocks, double alpha, boolean rslora, Set<LoraModule> targets) {
    public enum Method {
        LORA, BDLORA;

        public static Method parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "lora" -> LORA;
                case "bdlora", "bd-lora", "bd" -> BDLORA;
                default -> throw new IllegalArgumentException("unknown method '" + s + "' (expected lora or bdlora)");
            };
        }
    }

    public LoraSpec {
        if (rank < 1) throw new IllegalArgumentException("rank must be ≥ 1, got " + rank);
        if (method == Method.LORA && nblocks != 1) throw new IllegalArgumentException("ordinary LoRA has nblocks 1, got " + nblocks);
        if (nblocks < 1) throw new IllegalArgumentException("nblocks must be ≥ 1, got " + nblocks);
        if (rank % nblocks != 0) throw new IllegalArgumentException("rank " + rank + " is not a multiple of nblocks " + nblocks);
        if (!(alpha > 0) || !Double.isFinite(alpha)) throw new IllegalArgumentException("alpha must be positive, got " + alpha);
        if (targets.isEmpty()) throw new IllegalArgumentException("no target modules");
        targets = Set.copyOf(targets);
    }

    /** The LoRA scaling s: alpha / r, or alpha / sqrt(r) with rsLoRA. */
    public double scaling() { return rslora ? alpha / Math.sqrt(rank) : alpha / rank; }

    /** Blocks of module m's A factor: nblocks for BD-A modules (o, down), else 1. */
    public int aBlocks(LoraModule m) { return method == Method.BDLORA && !m.columnParallel() ? nblocks : 1; }

    /** Blocks of module m's B factor: nblocks for BD-B modules (q, k, v, gate, up), else 1. */
    public int bBlocks(LoraModule m) { return method == Method.BDLORA && m.columnParallel() ? nblocks : 1; }

    /** Checks that every dimension a block splits is divisible by nblocks (spec §2 constraints). */
    public void checkFits(LlamaConfig c) {
        for (LoraModule m : targets) {
            if (aBlocks(m) > 1 && m.in(c) % nblocks != 0)
                throw new IllegalArgumentException(m + " in_features " + m.in(c) + " is not divisible by nblocks " + nblocks);
            if (bBlocks(m) > 1 && m.out(c) % nblocks != 0)
                throw new IllegalArgumentException(m + " out_features " + m.out(c) + " is not divisible by nblocks " + nblocks);
        }
    }

    /** "q,k,v,o,gate,up,down" or "all" → modules. */
    public static Set<LoraModule> parseTargets(String s) {
        if (s.equalsIgnoreCase("all") || s.equalsIgnoreCase("all-linear")) return EnumSet.allOf(LoraModule.class);
        Set<LoraModule> out = EnumSet.noneOf(LoraModule.class);
        for (String p : s.split(",")) {
            LoraModule m = LoraModule.byName(p.trim());
            if (m == null) throw new IllegalArgumentException("unknown target module '" + p + "' (expected q,k,v,o,gate,up,down)");
            out.add(m);
        }
        return out;
    }
}
