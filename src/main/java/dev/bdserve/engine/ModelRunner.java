package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.parallel.CommStats;

/**
 * What the engine drives: a model on one rank or a tensor-parallel group, seen from rank 0. Not
 * thread-safe: one thread (the engine's step loop) calls it.
 */
public interface ModelRunner extends AutoCloseable {
    LlamaConfig config();

    /** Ranks in the group. */
    int tpSize();

    /** Runs one step on every rank; writes the logits of {@code b.logitRows()} into logits [L, vocab]. */
    void forward(StepBatch b, float[] logits);

    /** KV blocks in each rank's pool (the same on every rank). */
    int kvBlocks();

    /** Positions per KV block. */
    int kvBlockSize();

    /**
     * Checks that an adapter can run on this group, without registering it: throws {@link IllegalArgumentException}
     * naming the adapter, the reason and the fix when it cannot (e.g. a dense adapter under bdlora sharding at TP 2).
     */
    void checkAdapter(LoraAdapter a);

    /** Registers an adapter on every rank (each lays out its shard); returns its id. Throws as {@link #checkAdapter} does. */
    int addAdapter(LoraAdapter a);

    /** Removes an adapter from every rank. */
    void removeAdapter(int id);

    /** Rank 0's collective counters. */
    CommStats commStats();

    /** Rank 0's LoRA counters. */
    LoraStats loraStats();

    /**
     * Runs a full garbage collection in every JVM of the group (once when all ranks share one). Benchmarks call it
     * before their timed steps: a young collection paused one rank for 16–50 ms on this host (Parallel GC, ~450 MB
     * of live heap), every other rank waits for it at the next collective, and one such pause landing in a 35 ms
     * step moves a 96-step mean by 0.5–1.5%.
     */
    void collectGarbage();

    /** Adapter bytes rank 0 holds for an adapter. */
    long adapterBytesHeld(int id);

    @Override void close();
}
