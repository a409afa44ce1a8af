package dev.bdserve.engine;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** A prefix-cache hit compares tokens, adapter and parent block: a forced hash collision never shares KV. */
class PrefixCacheCollisionTest {
    static final int BS = 4;

    /** Every block hashes to 42: every lookup finds a candidate, and only a true match may be taken. */
    final BlockManager blocks = new BlockManager(16, BS, (prev, adapter, tokens, from, to) -> 42);

    /** Fills and caches the prompt's full blocks like a sequence would; returns its block table. */
    int[] cache(String adapter, int[] prompt) {
        int n = prompt.length / BS;
        int[] table = new int[n];
        long h = 0;
        for (int i = 0; i < n; i++) {
            table[i] = blocks.allocate();
            h = blocks.hash(h, adapter, prompt, i * BS, (i + 1) * BS);
            blocks.cacheFull(table[i], h, adapter, prompt, i * BS, i == 0 ? -1 : table[i - 1]);
        }
        return table;
    }

    @Test
    void collidingBlocksAreNotShared() {
        int[] a = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        int[] b = {9, 9, 9, 9, 5, 6, 7, 8, 9};
        int[] table = cache("", java.util.Arrays.copyOf(a, 8));
        assertEquals(2, table.length);
        assertArrayEquals(new int[]{table[0]}, blocks.lookupPrefix("", a),
                "the true prefix hits its first block (its second has the same hash as the first and is not cached)");
        assertEquals(0, blocks.lookupPrefix("", b).length, "same hash, other tokens: no hit");
        assertEquals(0, blocks.lookupPrefix("other-adapter", a).length, "same hash and tokens, other adapter: no hit");
    }

    @Test
    void aChildBlockIsTakenOnlyAfterItsOwnParent() {
        // Distinct hashes per position, but a collision between the second blocks of two different prompts.
        BlockManager bm = new BlockManager(16, BS, (prev, adapter, tokens, from, to) -> from == 0 ? 1000 + tokens[0] : 7);
        int[] a = {1, 1, 1, 1, 2, 2, 2, 2, 0};
        int[] b = {3, 3, 3, 3, 2, 2, 2, 2, 0};
        int a0 = bm.allocate(), a1 = bm.allocate();
        bm.cacheFull(a0, bm.hash(0, "", a, 0, BS), "", a, 0, -1);
        bm.cacheFull(a1, bm.hash(1, "", a, BS, 2 * BS), "", a, BS, a0);
        int b0 = bm.allocate();
        bm.cacheFull(b0, bm.hash(0, "", b, 0, BS), "", b, 0, -1);
        assertArrayEquals(new int[]{a0, a1}, bm.lookupPrefix("", a));
        assertArrayEquals(new int[]{b0}, bm.lookupPrefix("", b),
                "b's second block has a's tokens and hash, but follows another parent: not taken");
    }
}
