package dev.bdserve.structured;

import dev.bdserve.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.BitSet;

/**
 * A model's vocabulary as structured output needs it: each token id's output bytes ({@link Tokenizer#outputBytes};
 * null for special tokens, which a constraint never allows), the EOS ids (allowed exactly where the constraint
 * accepts), and a byte trie over the tokens, laid out in depth-first order so a mask is one forward scan that skips
 * a whole subtree as soon as its prefix is impossible: shared prefixes are walked once. Build one per model (it
 * takes about a second for 262K tokens) and share it; it is immutable.
 */
public final class TokenVocabulary {
    private final byte[][] bytes;
    private final int[] eos;
    // the trie, depth-first: node i spells byte nodeByte[i] at depth depth[i] (1-based); its subtree ends before
    // skip[i]; the tokens whose bytes end at it are tokIds[tokStart[i] .. tokStart[i + 1])
    private final byte[] nodeByte;
    private final int[] depth, skip, tokStart, tokIds;
    private final int maxDepth;

    private TokenVocabulary(byte[][] bytes, int[] eos) {
        this.bytes = bytes;
        this.eos = eos.clone();
        Integer[] order = new Integer[bytes.length];
        int n = 0;
        for (int id = 0; id < bytes.length; id++) if (bytes[id] != null && bytes[id].length > 0) order[n++] = id;
        Integer[] ids = Arrays.copyOf(order, n);
        Arrays.sort(ids, (a, b) -> Arrays.compareUnsigned(bytes[a], bytes[b]));
        Grammar.IntList nb = new Grammar.IntList(), dp = new Grammar.IntList(), count = new Grammar.IntList();
        int[] tok = new int[n];
        byte[] prev = new byte[0];
        int max = 0;
        for (int k = 0; k < n; k++) {
            byte[] b = bytes[ids[k]];
            int lcp = 0;
            while (lcp < Math.min(prev.length, b.length) && prev[lcp] == b[lcp]) lcp++;
            if (lcp == b.length && b.length == prev.length && k > 0) {
                count.a[count.size - 1]++;
            } else {
                for (int d = lcp; d < b.length; d++) {
                    nb.add(b[d]);
                    dp.add(d + 1);
                    count.add(0);
                }
                count.a[count.size - 1]++;
            }
            tok[k] = ids[k];
            max = Math.max(max, b.length);
            prev = b;
        }
        int nodes = nb.size;
        nodeByte = new byte[nodes];
        for (int i = 0; i < nodes; i++) nodeByte[i] = (byte) nb.get(i);
        depth = dp.toArray();
        tokStart = new int[nodes + 1];
        for (int i = 0; i < nodes; i++) tokStart[i + 1] = tokStart[i] + count.get(i);
        tokIds = tok;
        skip = new int[nodes];
        int[] open = new int[max + 2];
        int top = 0;
        for (int i = 0; i < nodes; i++) {
            while (top > 0 && depth[open[top - 1]] >= depth[i]) skip[open[--top]] = i;
            open[top++] = i;
        }
        while (top > 0) skip[open[--top]] = nodes;
        maxDepth = max;
    }

    /** The vocabulary of {@code t}: ids 0 .. vocabSize-1 and its EOS ids. */
    public static TokenVocabulary of(Tokenizer t) {
        byte[][] b = new byte[t.vocabSize()][];
        for (int id = 0; id < b.length; id++) b[id] = t.outputBytes(id);
        return new TokenVocabulary(b, t.eosIds());
    }

    /** A vocabulary from each id's bytes (null: special) and the EOS ids. */
    public static TokenVocabulary of(byte[][] bytes, int[] eosIds) {
        byte[][] b = new byte[bytes.length][];
        for (int i = 0; i < b.length; i++) b[i] = bytes[i] == null ? null : bytes[i].clone();
        return new TokenVocabulary(b, eosIds);
    }

    /** Number of ids (the highest id + 1). */
    public int size() { return bytes.length; }

    /** Token {@code id}'s output bytes, or null for a special token. Do not modify. */
    byte[] bytes(int id) { return bytes[id]; }

    public int[] eosIds() { return eos.clone(); }

    boolean isEos(int id) {
        for (int e : eos) if (e == id) return true;
        return false;
    }

    /** Trie nodes (distinct non-empty token prefixes). */
    int trieNodes() { return nodeByte.length; }

    /** Sets in {@code out} every token whose bytes {@code from} can take, and the EOS ids if it accepts. */
    void fill(StateSpace.State from, BitSet out) {
        StateSpace.State[] at = new StateSpace.State[maxDepth + 1];
        at[0] = from;
        int n = nodeByte.length;
        for (int i = 0; i < n; ) {
            int d = depth[i];
            StateSpace.State s = at[d - 1].step(nodeByte[i] & 0xFF);
            if (s.isDead()) {
                i = skip[i];
                continue;
            }
            at[d] = s;
            for (int t = tokStart[i]; t < tokStart[i + 1]; t++) out.set(tokIds[t]);
            i++;
        }
        if (from.accepting) for (int e : eos) if (e >= 0 && e < bytes.length) out.set(e);
    }
}
