package dev.bdserve.lora;

import java.nio.file.Path;

/**
 * A loaded adapter: per layer and module its factors (null where the adapter does not touch the module).
 * Immutable and shared by every request that uses it.
 *
 * @param name        the name requests use to select it
 * @param source      the folder it was loaded from (or null when built in memory)
 * @param contentHash SHA-256 of adapter_config.json and adapter_model.safetensors: two adapters (or two
 *                    loads under one name) share cached KV blocks only when their contents are identical
 * @param config      the parsed adapter_config.json
 * @param modules     [layer][LoraModule.ordinal()] factors, or null entries
 */
public record LoraAdapter(String name, Path source, String contentHash, AdapterConfig config, LoraWeights[][] modules) {

    public LoraWeights get(int layer, LoraModule m) { return modules[layer][m.ordinal()]; }

    /** Blocks of the BD factors (1 for an ordinary adapter). */
    public int nblocks() { return config.bd() == null ? 1 : config.bd().nblocks(); }

    public boolean isBlockDiagonal() { return config.bd() != null; }

    /** Total adapter parameters. */
    public long parameters() {
        long n = 0;
        for (LoraWeights[] l : modules) for (LoraWeights w : l) if (w != null) n += w.parameters();
        return n;
    }

    /** Bytes of all factors as stored for compute. */
    public long bytes() {
        long n = 0;
        for (LoraWeights[] l : modules) for (LoraWeights w : l) if (w != null) n += w.bytes();
        return n;
    }

    /** Largest rank of any module. */
    public int maxRank() {
        int r = 0;
        for (LoraWeights[] l : modules) for (LoraWeights w : l) if (w != null) r = Math.max(r, w.rank());
        return r;
    }
}
