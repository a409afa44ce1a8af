package dev.bdserve.engine;

import dev.bdserve.parallel.CommStats;

import java.util.List;
import java.util.Map;

/**
 * A snapshot of the engine for /metrics and /health.
 *
 * @param running               requests in the running batch
 * @param waiting               requests waiting to be scheduled
 * @param kvUsage               fraction of KV blocks in use, in [0, 1]
 * @param kvBlocks              KV blocks in the pool
 * @param promptTokens          prompt tokens processed (computed, not served from the prefix cache) since start
 * @param generationTokens      tokens generated since start
 * @param requestsFinished      requests finished, by finish reason ("stop", "length", "abort", "error")
 * @param preemptions           sequences preempted (and later recomputed) since start
 * @param prefixCacheQueries    prompt tokens looked up in the prefix cache
 * @param prefixCacheHits       of those, tokens found
 * @param steps                 model steps run
 * @param perAdapter            per adapter name ("" for the base model): requests and generated tokens
 * @param runningAdapters       names of adapters with running requests
 * @param waitingAdapters       names of adapters with waiting requests
 * @param maxLoras              the max_loras limit
 * @param residentAdapters      adapters resident now
 * @param comm                  rank 0's collective counters
 */
public record EngineStats(int running, int waiting, double kvUsage, int kvBlocks, long promptTokens, long generationTokens,
                          Map<String, Long> requestsFinished, long preemptions, long prefixCacheQueries, long prefixCacheHits,
                          long steps, Map<String, AdapterCounters> perAdapter, List<String> runningAdapters,
                          List<String> waitingAdapters, int maxLoras, int residentAdapters, CommStats comm) {

    /** Requests and generated tokens of one adapter. */
    public record AdapterCounters(long requests, long promptTokens, long generationTokens) {}
}
