package dev.bdserve.engine;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Rank 0's bookkeeping of the KV block pool (the pools on every rank mirror it): a free list, a reference
 * count per block, and the prefix cache — full blocks indexed by a hash of (adapter content hash, all
 * tokens up to and including the block), so that identical prefixes under identical adapters share
 * blocks and different adapters never do. Cached blocks no sequence uses stay cached until the space is
 * needed (least recently used first). Used by one thread.
 *
 * <p>The 64-bit hash only finds a candidate: a hit is taken only when the cached block holds the same tokens, under
 * the same adapter, after the very block the lookup matched before it (each cached block records its parent's
 * cache serial number). So two prefixes whose hashes collide never share KV, whoever chose the tokens.
 */
public final class BlockManager {
    /** The hash that indexes a full block: over the previous block's hash, the adapter's content hash and the block's tokens. */
    @FunctionalInterface
    interface BlockHasher { long hash(long previous, String adapterHash, int[] tokens, int from, int to); }

    private final int numBlocks;
    private final int blockSize;
    private final BlockHasher hasher;
    private final int[] refs;                                   // [numBlocks] sequences using each block
    private final long[] hashOf;                                // [numBlocks] prefix hash of a cached full block, or 0
    private final int[][] tokensOf;                             // [numBlocks] a cached block's tokens, else null
    private final String[] adapterOf;                           // [numBlocks] a cached block's adapter content hash
    private final long[] serialOf;                              // [numBlocks] a cached block's serial number (≥ 1), else 0
    private final long[] parentSerialOf;                        // [numBlocks] its parent's serial number (0: first block)
    private long nextSerial = 1;
    private final ArrayDeque<Integer> free = new ArrayDeque<>(); // never cached, or evicted
    private final LinkedHashMap<Long, Integer> cached = new LinkedHashMap<>(16, 0.75f, true); // hash → block (LRU order)
    private final LinkedHashMap<Integer, Boolean> idleCached = new LinkedHashMap<>(); // cached blocks with refs == 0, LRU first
    private long hits, queries;

    public BlockManager(int numBlocks, int blockSize) { this(numBlocks, blockSize, BlockManager::blockHash); }

    /** With another block hash (tests force collisions with a constant one). */
    BlockManager(int numBlocks, int blockSize, BlockHasher hasher) {
        if (numBlocks < 1 || blockSize < 1) throw new IllegalArgumentException("need at least one block of at least one position");
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.hasher = hasher;
        this.refs = new int[numBlocks];
        this.hashOf = new long[numBlocks];
        this.tokensOf = new int[numBlocks][];
        this.adapterOf = new String[numBlocks];
        this.serialOf = new long[numBlocks];
        this.parentSerialOf = new long[numBlocks];
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
            uncache(b);
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

    /** This manager's hash of a full block (see {@link #blockHash}). */
    public long hash(long previous, String adapterHash, int[] tokens, int from, int to) {
        long h = hasher.hash(previous, adapterHash, tokens, from, to);
        return h == 0 ? 1 : h;                        // 0 marks "not cached"
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
        String adapter = adapterHash == null ? "" : adapterHash;
        long parent = 0;
        for (int i = 0; i < full; i++) {
            h = hash(h, adapter, prompt, i * blockSize, (i + 1) * blockSize);
            Integer b = cached.get(h);
            if (b == null || !holds(b, adapter, parent, prompt, i * blockSize)) break;   // a miss, or a hash collision
            if (refs[b]++ == 0) idleCached.remove(b);
            out[n++] = b;
            parent = serialOf[b];
        }
        hits += (long) n * blockSize;
        return Arrays.copyOf(out, n);
    }

    /** Whether cached block b holds exactly these tokens, under this adapter, after the block of serial {@code parent}. */
    private boolean holds(int b, String adapter, long parent, int[] tokens, int from) {
        return parentSerialOf[b] == parent && adapter.equals(adapterOf[b])
                && Arrays.equals(tokensOf[b], 0, blockSize, tokens, from, from + blockSize);
    }

    /**
     * Records a sequence's newly filled full block in the prefix cache: {@code tokens[from, from + blockSize)} under
     * the adapter of that content hash, following the sequence's block {@code parentBlock} (-1 for its first). A block
     * whose parent is not cached, or whose hash is taken (the same content, or a collision), stays uncached.
     */
    public void cacheFull(int block, long hash, String adapterHash, int[] tokens, int from, int parentBlock) {
        if (hashOf[block] != 0) return;               // already cached (it came from the cache)
        long parent = parentBlock < 0 ? 0 : serialOf[parentBlock];
        if (parentBlock >= 0 && parent == 0) return;  // its parent is not cached: no lookup could reach it
        if (cached.containsKey(hash)) return;         // an identical block is cached already (or one whose hash collides)
        hashOf[block] = hash;
        tokensOf[block] = Arrays.copyOfRange(tokens, from, from + blockSize);
        adapterOf[block] = adapterHash == null ? "" : adapterHash;
        serialOf[block] = nextSerial++;
        parentSerialOf[block] = parent;
        cached.put(hash, block);
    }

    /** Takes a block out of the prefix cache; its children become unreachable (their parent serial never recurs). */
    private void uncache(int b) {
        cached.remove(hashOf[b]);
        hashOf[b] = 0;
        tokensOf[b] = null;
        adapterOf[b] = null;
        serialOf[b] = 0;
        parentSerialOf[b] = 0;
    }

    /** Drops every cached block that no sequence uses (e.g. when an adapter is unloaded its blocks become unreachable anyway). */
    public void clearIdleCache() {
        for (Integer b : idleCached.keySet()) { uncache(b); free.add(b); }
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
