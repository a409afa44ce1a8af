package dev.bdserve.lora;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The inference-relevant keys of a PEFT {@code adapter_config.json} (spec §3), validated.
 *
 * @param r               default rank (shapes win over it)
 * @param loraAlpha       default alpha
 * @param targetList      target_modules as a list of names (null when given as a regex or "all-linear")
 * @param targetRegex     target_modules as a regex string matched against the full module path (null otherwise)
 * @param allLinear       target_modules == "all-linear"
 * @param useRslora       scaling alpha / sqrt(r) instead of alpha / r
 * @param rankPattern     per-module rank overrides (PEFT key pattern → rank)
 * @param alphaPattern    per-module alpha overrides (PEFT key pattern → alpha)
 * @param baseModel       base_model_name_or_path, or null
 * @param layersToTransform layers the adapter applies to, or null for all
 * @param bd              the BD-LoRA settings, or null for an ordinary LoRA adapter
 */
public record AdapterConfig(int r, double loraAlpha, List<String> targetList, String targetRegex, boolean allLinear,
                            boolean useRslora, Map<String, Integer> rankPattern, Map<String, Double> alphaPattern,
                            String baseModel, Set<Integer> layersToTransform, BdConfig bd) {

    /**
     * {@code use_bdlora}: modules whose A (row-parallel o, down) or B (column-parallel q, k, v, gate, up) is
     * block-diagonal with {@code nblocks} blocks, stored packed (spec §3).
     */
    public record BdConfig(Set<LoraModule> bdA, Set<LoraModule> bdB, int nblocks) {
        public BdConfig {
            if (nblocks < 1) throw new IllegalArgumentException("use_bdlora.nblocks must be ≥ 1, got " + nblocks);
            bdA = Set.copyOf(bdA);
            bdB = Set.copyOf(bdB);
        }
    }

    public AdapterConfig {
        if (r < 1) throw new IllegalArgumentException("r must be ≥ 1, got " + r);
        if (!Double.isFinite(loraAlpha)) throw new IllegalArgumentException("lora_alpha must be a finite number");
        rankPattern = Map.copyOf(rankPattern);
        alphaPattern = Map.copyOf(alphaPattern);
        if (targetList != null) targetList = List.copyOf(targetList);
        if (targetRegex != null) new BoundedRegex(targetRegex, "target_modules regex");   // refuses a bad one now
    }

    /**
     * True when target_modules selects the module at {@code path} (PEFT's rules for list, regex and "all-linear"). A
     * regex is matched within {@link BoundedRegex}'s bounds (a ModelFormatException beyond them).
     */
    public boolean targets(String path, LoraModule m, int layer) {
        if (layersToTransform != null && !layersToTransform.contains(layer)) return false;
        if (allLinear) return true;
        if (targetRegex != null) return new BoundedRegex(targetRegex, "target_modules regex").matches(path);
        for (String t : targetList) if (path.equals(t) || path.endsWith("." + t)) return true;
        return false;
    }

    /** alpha_pattern's value for the module, else lora_alpha (PEFT: the first key matching "(^|.*\.)key$"). */
    public double alphaFor(String path) {
        for (var e : alphaPattern.entrySet()) if (patternMatches("alpha_pattern", e.getKey(), path)) return e.getValue();
        return loraAlpha;
    }

    /** rank_pattern's value for the module, else r. */
    public int rankFor(String path) {
        for (var e : rankPattern.entrySet()) if (patternMatches("rank_pattern", e.getKey(), path)) return e.getValue();
        return r;
    }

    /** PEFT's key match, bounded ({@link BoundedRegex}); {@code field} names the config key in errors. */
    static boolean patternMatches(String field, String key, String path) {
        return keyPattern(field, key).matches(path);
    }

    /** A rank_pattern / alpha_pattern key as PEFT matches it: the module path ends with it, after a dot or at the start. */
    static BoundedRegex keyPattern(String field, String key) {
        return new BoundedRegex("(^|.*\\.)" + key + "$", field + " key '" + key + "' as the pattern");
    }

    /** The LoRA scaling for a module of the given rank: alpha / r, or alpha / sqrt(r) with rsLoRA. */
    public double scaling(String path, int rank) {
        double a = alphaFor(path);
        return useRslora ? a / Math.sqrt(rank) : a / rank;
    }

    /** How the module's factors are stored. */
    public LoraKind kindOf(LoraModule m) {
        if (bd == null) return LoraKind.DENSE;
        if (bd.bdA().contains(m)) return LoraKind.BD_A;
        if (bd.bdB().contains(m)) return LoraKind.BD_B;
        return LoraKind.DENSE;
    }
}
