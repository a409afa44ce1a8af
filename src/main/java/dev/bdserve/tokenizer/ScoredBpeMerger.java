package dev.bdserve.tokenizer;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece BPE merging by score, as llama2.c's {@code encode} (and llama.cpp's SPM tokenizer) does it: of the
 * adjacent pairs whose concatenation is a mergeable vocabulary token, the one whose token has the highest score
 * (leftmost on ties) is merged, until no pair merges. Every such pair of tokens is known in advance, and merging uses a
 * priority queue over a linked list of symbols: O(n log n).
 */
final class ScoredBpeMerger {
    private final float[] scores;
    /** Every pair of mergeable tokens whose byte concatenation is a mergeable token: (left, right) → merged. */
    private final LongIntMap pairs;

    /**
     * {@code lookup}: the mergeable tokens keyed by their bytes as a Latin-1 string (so that concatenation is byte
     * concatenation); {@code scores}: every token's score, by id.
     */
    ScoredBpeMerger(Map<String, Integer> lookup, float[] scores) {
        this.scores = scores;
        Map<Long, Integer> pairMap = new HashMap<>();
        for (var e : lookup.entrySet()) {
            String key = e.getKey();
            int id = e.getValue();
            for (int cut = 1; cut < key.length(); cut++) {
                Integer l = lookup.get(key.substring(0, cut));
                if (l == null) continue;
                Integer r = lookup.get(key.substring(cut));
                if (r != null) pairMap.put(pairKey(l, r), id);
            }
        }
        this.pairs = new LongIntMap(pairMap.size());
        pairMap.forEach(pairs::put);
    }

    private static long pairKey(int l, int r) { return ((long) l << 32) | (r & 0xFFFFFFFFL); }

    /** Candidate merge of symbol {@code left} with its right neighbour, valid while both are unchanged. */
    private record Pair(int left, int right, int leftVer, int rightVer, float score, int id) {}

    /** The tokens {@code ids[0..n)} merge into. */
    int[] merge(int[] ids, int n) {
        if (n < 2) return Arrays.copyOf(ids, n);
        int[] tok = Arrays.copyOf(ids, n);
        int[] prev = new int[n], next = new int[n], ver = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Pair> pq = new PriorityQueue<>(Math.max(1, n), (a, b) -> {
            int c = Float.compare(b.score, a.score);
            return c != 0 ? c : Integer.compare(a.left, b.left);
        });
        for (int i = 0; i + 1 < n; i++) offer(pq, tok, ver, i, i + 1);
        while (!pq.isEmpty()) {
            Pair p = pq.poll();
            int l = p.left, r = p.right;
            if (ver[l] != p.leftVer || ver[r] != p.rightVer || next[l] != r || ver[l] < 0 || ver[r] < 0) continue;
            // merge r into l
            tok[l] = p.id;
            ver[l]++;
            ver[r] = -1; // dead
            int rn = next[r];
            next[l] = rn;
            if (rn >= 0) prev[rn] = l;
            if (prev[l] >= 0) offer(pq, tok, ver, prev[l], l);
            if (rn >= 0) offer(pq, tok, ver, l, rn);
        }
        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) count++;
        int[] out = new int[count];
        int k = 0;
        for (int i = 0; i >= 0; i = next[i]) out[k++] = tok[i];
        return out;
    }

    private void offer(PriorityQueue<Pair> pq, int[] tok, int[] ver, int l, int r) {
        int id = pairs.get(pairKey(tok[l], tok[r]));
        if (id >= 0) pq.add(new Pair(l, r, ver[l], ver[r], scores[id], id));
    }

    /** Open-addressing long → non-negative int map (-1 = absent). */
    private static final class LongIntMap {
        private final long[] keys;
        private final int[] vals;
        private final int mask;

        LongIntMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
            keys = new long[cap];
            vals = new int[cap];
            Arrays.fill(vals, -1);
            mask = cap - 1;
        }

        private int slot(long k) {
            long h = k * 0x9E3779B97F4A7C15L;
            return (int) (h ^ (h >>> 32)) & mask;
        }

        void put(long k, int v) {
            for (int i = slot(k); ; i = (i + 1) & mask) {
                if (vals[i] < 0 || keys[i] == k) {
                    if (vals[i] < 0) { keys[i] = k; vals[i] = v; }
                    return;
                }
            }
        }

        int get(long k) {
            for (int i = slot(k); ; i = (i + 1) & mask) {
                if (vals[i] < 0) return -1;
                if (keys[i] == k) return vals[i];
            }
        }
    }
}
