package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;

import java.util.Locale;

/**
 * How an adapter is split over the ranks of a tensor-parallel group (spec §2).
 * At TP 1 every strategy computes the same thing without collectives.
 */
public enum LoraSharding {
    /** BD-LoRA for BD adapters that fit the TP degree, the configured fall-back for the others. */
    AUTO,
    /** A whole in column layers / B whole in row layers: no extra collective, redundant work. */
    REPLICATED,
    /** S-LoRA: all-gather after the column shrink, all-reduce after the row shrink (one per module group). */
    SLORA,
    /** BD-LoRA: each rank holds its diagonal blocks; no extra collective, no redundant work. */
    BDLORA;

    public static LoraSharding parse(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown LoRA sharding '" + s + "' (expected auto, replicated, slora or bdlora)");
        }
    }

    /**
     * The strategy an adapter actually runs under at TP {@code n}: never AUTO. BD adapters at TP 1 run
     * their packed blocks (the BD-LoRA layout with one rank); dense adapters at TP 1 run replicated (no
     * collective either way). Throws with the reason when BD-LoRA is requested and the adapter does not fit.
     */
    public LoraSharding resolve(LoraAdapter a, LlamaConfig c, int n, LoraSharding fallback) {
        if (fallback == AUTO || fallback == BDLORA) throw new IllegalArgumentException("the fall-back must be replicated or slora");
        String bdReason = AdapterTools.bdLoraReason(a, c, n);
        if (n == 1) return bdReason == null ? BDLORA : REPLICATED;
        return switch (this) {
            case AUTO -> bdReason == null ? BDLORA : fallback;
            case BDLORA -> {
                if (bdReason != null)
                    throw new IllegalArgumentException("adapter " + a.name() + " cannot use bdlora sharding at TP " + n + ": " + bdReason
                            + "; to serve it, run with --lora-sharding auto --lora-fallback replicated (or slora)");
                yield BDLORA;
            }
            default -> this;
        };
    }
}
