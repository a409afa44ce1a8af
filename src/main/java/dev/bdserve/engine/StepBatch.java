package dev.bdserve.engine;

import java.util.Arrays;

/**
 * A step as rank 0 describes it to every rank of the group: the tokens, and for each sequence in the
 * step its KV block table (blocks assigned by rank 0's {@link BlockManager}; every rank holds the same
 * block numbers for its own KV heads), so ranks keep no per-sequence state.
 *
 * @param tokens      [T] token ids
 * @param positions   [T] positions in their sequences
 * @param seqIndex    [T] index into {@code blockTables} of each token's sequence
 * @param adapterIds  [T] adapter id of each token, or -1 for the base model
 * @param logitRows   indices into [0, T) of the tokens whose next-token logits are wanted
 * @param blockTables [S][blocks] the KV blocks of each sequence in the step, in position order
 */
public record StepBatch(int[] tokens, int[] positions, int[] seqIndex, int[] adapterIds, int[] logitRows, int[][] blockTables) {
    public StepBatch {
        int t = tokens.length;
        if (t == 0) throw new IllegalArgumentException("a step needs at least one token");
        if (positions.length != t || seqIndex.length != t || adapterIds.length != t)
            throw new IllegalArgumentException("tokens, positions, seqIndex and adapterIds must have one entry per token");
        for (int s : seqIndex) if (s < 0 || s >= blockTables.length) throw new IllegalArgumentException("sequence index " + s + " has no block table");
    }

    public int size() { return tokens.length; }

    /** The message broadcast to the other ranks. */
    int[] encode() {
        int t = tokens.length, l = logitRows.length, s = blockTables.length;
        int n = 3 + 4 * t + l + s;
        for (int[] b : blockTables) n += b.length;
        int[] m = new int[n];
        m[0] = t; m[1] = l; m[2] = s;
        int k = 3;
        System.arraycopy(tokens, 0, m, k, t); k += t;
        System.arraycopy(positions, 0, m, k, t); k += t;
        System.arraycopy(seqIndex, 0, m, k, t); k += t;
        System.arraycopy(adapterIds, 0, m, k, t); k += t;
        System.arraycopy(logitRows, 0, m, k, l); k += l;
        for (int[] b : blockTables) { m[k++] = b.length; System.arraycopy(b, 0, m, k, b.length); k += b.length; }
        return m;
    }

    static StepBatch decode(int[] m) {
        int t = m[0], l = m[1], s = m[2], k = 3;
        int[] tokens = Arrays.copyOfRange(m, k, k + t); k += t;
        int[] positions = Arrays.copyOfRange(m, k, k + t); k += t;
        int[] seq = Arrays.copyOfRange(m, k, k + t); k += t;
        int[] ad = Arrays.copyOfRange(m, k, k + t); k += t;
        int[] rows = Arrays.copyOfRange(m, k, k + l); k += l;
        int[][] tables = new int[s][];
        for (int i = 0; i < s; i++) { int n = m[k++]; tables[i] = Arrays.copyOfRange(m, k, k + n); k += n; }
        return new StepBatch(tokens, positions, seq, ad, rows, tables);
    }
}
