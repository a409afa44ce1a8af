package dev.bdserve.engine;

/**
 * A step as rank 0 describes it to every rank of the group: the same as a model {@link dev.bdserve.model.Step}
 * but naming sequences and adapters by id, since each rank holds its own KV caches and adapter shards.
 *
 * @param tokens     [T] token ids
 * @param positions  [T] positions in their sequences
 * @param seqIds     [T] sequence id of each token (the rank's KV cache for it is created on first use)
 * @param adapterIds [T] adapter id of each token, or -1 for the base model
 * @param logitRows  indices into [0, T) of the tokens whose next-token logits are wanted
 */
public record StepBatch(int[] tokens, int[] positions, int[] seqIds, int[] adapterIds, int[] logitRows) {
    public StepBatch {
        int t = tokens.length;
        if (t == 0) throw new IllegalArgumentException("a step needs at least one token");
        if (positions.length != t || seqIds.length != t || adapterIds.length != t)
            throw new IllegalArgumentException("tokens, positions, seqIds and adapterIds must have one entry per token");
    }

    public int size() { return tokens.length; }

    /** The message broadcast to the other ranks: [T, L, tokens, positions, seqIds, adapterIds, logitRows]. */
    int[] encode() {
        int t = tokens.length, l = logitRows.length;
        int[] m = new int[2 + 4 * t + l];
        m[0] = t;
        m[1] = l;
        System.arraycopy(tokens, 0, m, 2, t);
        System.arraycopy(positions, 0, m, 2 + t, t);
        System.arraycopy(seqIds, 0, m, 2 + 2 * t, t);
        System.arraycopy(adapterIds, 0, m, 2 + 3 * t, t);
        System.arraycopy(logitRows, 0, m, 2 + 4 * t, l);
        return m;
    }

    static StepBatch decode(int[] m, int off) {
        int t = m[off], l = m[off + 1];
        int b = off + 2;
        return new StepBatch(java.util.Arrays.copyOfRange(m, b, b + t), java.util.Arrays.copyOfRange(m, b + t, b + 2 * t),
                java.util.Arrays.copyOfRange(m, b + 2 * t, b + 3 * t), java.util.Arrays.copyOfRange(m, b + 3 * t, b + 4 * t),
                java.util.Arrays.copyOfRange(m, b + 4 * t, b + 4 * t + l));
    }
}
