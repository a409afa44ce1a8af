package dev.bdserve.engine;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Rank 0's bookkeeping of the KV block pool (the pools on every rank mirror it): a free list, a reference
 * count per block, and the prefix cache — full blocks indexed by a hash of (adapter content hash, all
 * tokens up to and including the block), so that identical prefixes under identical adapters share
 * blocks and different adapters never do. Cached blocks no sequence uses stay cached until the space is
 * needed (least recently used first). Used by one thread.
 */
public final class BlockManager {
    private final int numBlocks;
    private final int blockSize;
    private final int[] refs;                                   // [numBlocks] sequences using each block
    private final long[] hashOf;                                // [numBlocks] prefix hash of a cached full block, or 0
    private final ArrayDeque<Integer> free = new ArrayDeque<>(); // never cached, or evicted
    private final LinkedHashMap<Long, Integer> cached = new LinkedHashMap<>(16, 0.75f, true); // hash → block (LRU order)
    private final LinkedHashMap<Integer, Boolean> idleCached = new LinkedHashMap<>(); // cached blocks with refs == 0, LRU first
    private long hits, queries;

    public BlockManager(int numBlocks, int blockSize) {
        if (numBlocks < 1 || blockSize < 1) throw new IllegalArgumentException("need at least one block of at least one position");
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.refs = new int[numBlocks];
        this.hashOf = new long[numBlocks];
        for (int i = 0; i < numBlocks; i++) free.add(i);
    }

    public int numBlocks() { return numBlocks; }
    public int blockSize() { return blockSize; }

    /** Blocks that can be handed out now (free, or cached but unused). */
    public int available() { return free.size() + idleCached.size(); }

    /** Blocks referenced by at least one sequence. */
    public int used() { return numBlocks - available(); }

    public long prefixHits() { return hits; }
    public long prefixQueries() { return queries; }

    /** Blocks needed to hold {@code positions} positions. */
    public int blocksFor(int positions) { return (positions + blockSize - 1) / blockSize; }

    /** Takes one block for a sequence's exclusive use; -1 if none is available. */
    public int allocate() {
        Integer b = free.poll();
        if (b == null) {
            var it = idleCached.keySet().iterator();
            if (!it.hasNext()) return -1;
            b = it.next();
            it.remove();
            cached.remove(hashOf[b]);
            hashOf[b] = 0;
        }
        refs[b] = 1;
        return b;
    }

    /** Releases a sequence's reference to a block. */
    public void release(int b) {
        if (refs[b] <= 0) throw new IllegalStateException("block " + b + " released twice");
        if (--refs[b] == 0) {
            if (hashOf[b] != 0) idleCached.put(b, Boolean.TRUE);
            else free.add(b);
        }
    }

    /** The hash of a full block: chained over the previous block's hash, the adapter's content hash and the block's tokens. */
    public static long blockHash(long previous, String adapterHash, int[] tokens, int from, int to) {
        long h = previous * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L;
        if (previous == 0 && adapterHash != null)
            for (int i = 0; i < adapterHash.length(); i++) h = (h ^ adapterHash.charAt(i)) * 0x100000001B3L;
        for (int i = from; i < to; i++) h = (h ^ tokens[i]) * 0x100000001B3L + 0x9E37L;
        h ^= h >>> 29;
        return h == 0 ? 1 : h;
    }

    /**
     * The longest run of cached full blocks for this prompt (never the block holding the prompt's last
     * token, which must be computed to produce logits). Each returned block gains a reference.
     */
    public int[] lookupPrefix(String adapterHash, int[] prompt) {
        int full = (prompt.length - 1) / blockSize;
        int[] out = new int[full];
        long h = 0;
        int n = 0;
        queries += (long) full * blockSize;
        for (int i = 0; i < full; i++) {
            h = blockHash(h, adapterHash == null ? "" : adapterHash, prompt, i * blockSize, (i + 1) * blockSize);
            Integer b = cached.get(h);
            if (b == null) break;
            if (refs[b]++ == 0) idleCached.remove(b);
            out[n++] = b;
        }
        hits += (long) n * blockSize;
        return java.util.Arrays.copyOf(out, n);
    }

    /** Records a sequence's newly filled full block (block index i of the sequence) in the prefix cache. */
    public void cacheFull(int block, long hash) {
        if (hashOf[block] != 0) return;               // already cached (it came from the cache)
        Integer existing = cached.get(hash);
        if (existing != null) return;                 // an identical block is cached already
        hashOf[block] = hash;
        cached.put(hash, block);
    }

    /** Drops every cached block that no sequence uses (e.g. when an adapter is unloaded its blocks become unreachable anyway). */
    public void clearIdleCache() {
        for (Integer b : idleCached.keySet()) { cached.remove(hashOf[b]); hashOf[b] = 0; free.add(b); }
        idleCached.clear();
    }

    /** Blocks per sequence for a simple static batch (no sharing): each gets enough blocks for {@code positions}. */
    public int[] allocateTable(int positions) {
        int n = blocksFor(positions);
        if (n > available()) throw new IllegalStateException("KV cache too small: need " + n + " blocks, " + available() + " free");
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = allocate();
        return t;
    }

    public void releaseTable(int[] table) { for (int b : table) release(b); }

    /** Counts of blocks by state, for tests. */
    Map<String, Integer> census() {
        Map<String, Integer> m = new HashMap<>();
        m.put("free", free.size());
        m.put("idleCached", idleCached.size());
        m.put("cached", cached.size());
        return m;
    }
}
