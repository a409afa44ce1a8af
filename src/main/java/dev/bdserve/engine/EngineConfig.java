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
 * @param maxRegisteredLoras  adapters registered (loaded by name, resident or not) at most; more are refused
 * @param maxRegisteredLoraBytes bytes of factors of all registered adapters at most; an adapter beyond it is refused
 */
public record EngineConfig(int maxNumSeqs, int maxBatchedTokens, int maxLoras, int maxCpuLoras, int maxLoraRank,
                           long kvCacheBytes, int blockSize, int maxWaiting, boolean enablePrefixCaching,
                           int maxRegisteredLoras, long maxRegisteredLoraBytes) {
    /** Registered adapters at most by default. */
    public static final int DEFAULT_MAX_REGISTERED_LORAS = 256;
    /** Bytes of registered adapters at most by default: 8 GiB. */
    public static final long DEFAULT_MAX_REGISTERED_LORA_BYTES = 8L << 30;

    /** With the default caps on registered adapters. */
    public EngineConfig(int maxNumSeqs, int maxBatchedTokens, int maxLoras, int maxCpuLoras, int maxLoraRank,
                        long kvCacheBytes, int blockSize, int maxWaiting, boolean enablePrefixCaching) {
        this(maxNumSeqs, maxBatchedTokens, maxLoras, maxCpuLoras, maxLoraRank, kvCacheBytes, blockSize, maxWaiting, enablePrefixCaching,
                DEFAULT_MAX_REGISTERED_LORAS, DEFAULT_MAX_REGISTERED_LORA_BYTES);
    }

    /** These settings with other caps on registered adapters. */
    public EngineConfig withRegisteredLoraCaps(int count, long bytes) {
        return new EngineConfig(maxNumSeqs, maxBatchedTokens, maxLoras, maxCpuLoras, maxLoraRank, kvCacheBytes, blockSize, maxWaiting,
                enablePrefixCaching, count, bytes);
    }

    public EngineConfig {
        if (maxNumSeqs < 1) throw new IllegalArgumentException("max_num_seqs must be ≥ 1");
        if (maxBatchedTokens < 1) throw new IllegalArgumentException("max_num_batched_tokens must be ≥ 1");
        if (maxLoras < 1) throw new IllegalArgumentException("max_loras must be ≥ 1");
        if (maxCpuLoras < maxLoras) throw new IllegalArgumentException("max_cpu_loras (" + maxCpuLoras + ") must be ≥ max_loras (" + maxLoras + ")");
        if (maxLoraRank < 1) throw new IllegalArgumentException("max_lora_rank must be ≥ 1");
        if (kvCacheBytes < 1) throw new IllegalArgumentException("the KV cache budget must be positive");
        if (blockSize < 1) throw new IllegalArgumentException("block size must be ≥ 1");
        if (maxWaiting < 1) throw new IllegalArgumentException("the waiting queue must hold at least one request");
        if (maxRegisteredLoras < 1) throw new IllegalArgumentException("max registered LoRAs must be ≥ 1");
        if (maxRegisteredLoraBytes < 1) throw new IllegalArgumentException("the byte cap on registered LoRAs must be positive");
    }

    /** vLLM-like defaults: 256 sequences, 2048 tokens per step, 8 adapters per step, 32 resident, rank 64, 1 GiB of KV, blocks of 16. */
    public static EngineConfig defaults() {
        return new EngineConfig(256, 2048, 8, 32, 64, 1L << 30, 16, 4096, true);
    }
}
