package dev.bdserve.model;

import java.util.Arrays;

/**
 * One sequence's keys and values on one rank: its block table into a {@link KvPool}. Position p lives
 * at slot {@code table[p / blockSize] · blockSize + p % blockSize} of the pool. Either a view of blocks
 * that rank 0's block manager assigned (the engine), or a standalone cache with a private pool that grows
 * as positions are written (tests and tools that drive a model directly). Belongs to the request.
 */
public final class KvCache {
    private final KvPool pool;
    private int[] table;          // block ids, in position order
    private final boolean owned;  // a private pool that grows on demand
    private final int maxPositions;
    private int length;           // positions written (standalone caches)

    private KvCache(KvPool pool, int[] table, boolean owned, int maxPositions) {
        this.pool = pool;
        this.table = table;
        this.owned = owned;
        this.maxPositions = maxPositions;
    }

    /** A view of blocks assigned by a block manager. */
    public static KvCache view(KvPool pool, int[] table, int maxPositions) {
        for (int b : table)
            if (b < 0 || b >= pool.numBlocks()) throw new IllegalArgumentException("block " + b + " outside the pool of " + pool.numBlocks());
        return new KvCache(pool, table, false, maxPositions);
    }

    /** A cache with its own pool, grown by doubling up to the context limit. */
    static KvCache standalone(int layers, int kvDim, int blockSize, int maxPositions, int initialCapacity) {
        int blocks = Math.max(1, (Math.min(initialCapacity, maxPositions) + blockSize - 1) / blockSize);
        KvPool p = new KvPool(layers, kvDim, blockSize, blocks);
        int[] t = new int[blocks];
        for (int i = 0; i < blocks; i++) t[i] = i;
        return new KvCache(p, t, true, maxPositions);
    }

    public KvPool pool() { return pool; }
    int[] table() { return table; }

    /** Positions written so far (standalone caches). */
    public int length() { return length; }

    /** Forgets positions ≥ n (standalone caches). */
    public void truncate(int n) {
        if (n < 0 || n > length) throw new IllegalArgumentException("truncate to " + n + " of " + length);
        length = n;
    }

    /** Pool slot of position p. */
    int slot(int p) {
        int bs = pool.blockSize();
        return table[p / bs] * bs + p % bs;
    }

    void ensureCapacity(int positions) {
        if (positions > maxPositions)
            throw new IllegalArgumentException("sequence of " + positions + " tokens exceeds the context limit of " + maxPositions);
        int bs = pool.blockSize();
        int need = (positions + bs - 1) / bs;
        if (need <= table.length) return;
        if (!owned) throw new IllegalArgumentException("position " + (positions - 1) + " is beyond the sequence's " + table.length + " KV blocks");
        int blocks = Math.max(need, table.length * 2);
        blocks = Math.min(blocks, (maxPositions + bs - 1) / bs);
        int old = table.length;
        pool.grow(blocks);
        table = Arrays.copyOf(table, blocks);
        for (int i = old; i < blocks; i++) table[i] = i;
    }

    void markFilled(int positions) { length = Math.max(length, positions); }
}
