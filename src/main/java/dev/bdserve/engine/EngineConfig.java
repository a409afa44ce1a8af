package dev.bdserve.engine;

/**
 * Limits and sizes of the serving engine (vLLM's names in brackets).
 *
 * @param maxNumSeqs          sequences in the running batch at most (max_num_seqs)
 * @param maxBatchedTokens    tokens per step at most: decode tokens plus prefill chunks (max_num_batched_tokens)
 * @param maxLoras            distinct adapters in one step at most (max_loras)
 * @param maxCpuLoras         adapters resident in memory at most; idle ones are evicted least-recently-used first (max_cpu_loras)
 * @param maxLoraRank         largest adapter rank accepted (max_lora_rank)
 * @param kvCacheBytes        memory budget of the KV block pool on each rank
 * @param blockSize           tokens per KV block
 * @param maxWaiting          requests waiting at most; more are refused (the server answers 429)
 * @param enablePrefixCaching share full KV blocks of identical prefixes (same adapter content only)
 */
public record EngineConfig(int maxNumSeqs, int maxBatchedTokens, int maxLoras, int maxCpuLoras, int maxLoraRank,
                           long kvCacheBytes, int blockSize, int maxWaiting, boolean enablePrefixCaching) {
    public EngineConfig {
        if (maxNumSeqs < 1) throw new IllegalArgumentException("max_num_seqs must be ≥ 1");
        if (maxBatchedTokens < 1) throw new IllegalArgumentException("max_num_batched_tokens must be ≥ 1");
        if (maxLoras < 1) throw new IllegalArgumentException("max_loras must be ≥ 1");
        if (maxCpuLoras < maxLoras) throw new IllegalArgumentException("max_cpu_loras (" + maxCpuLoras + ") must be ≥ max_loras (" + maxLoras + ")");
        if (maxLoraRank < 1) throw new IllegalArgumentException("max_lora_rank must be ≥ 1");
        if (kvCacheBytes < 1) throw new IllegalArgumentException("the KV cache budget must be positive");
        if (blockSize < 1) throw new IllegalArgumentException("block size must be ≥ 1");
        if (maxWaiting < 1) throw new IllegalArgumentException("the waiting queue must hold at least one request");
    }

    /** vLLM-like defaults: 256 sequences, 2048 tokens per step, 8 adapters per step, 32 resident, rank 64, 1 GiB of KV, blocks of 16. */
    public static EngineConfig defaults() {
        return new EngineConfig(256, 2048, 8, 32, 64, 1L << 30, 16, 4096, true);
    }
}
