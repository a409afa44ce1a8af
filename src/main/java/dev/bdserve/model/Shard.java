package dev.bdserve.model;

/**
 * Which slice of the model one tensor-parallel rank holds (spec §1, Megatron style): whole attention
 * heads, a contiguous slice of the FFN width, and a contiguous slice of the vocabulary for the LM head.
 * With {@code size == 1} the slice is the whole model.
 *
 * @param rank index of this rank in [0, size)
 * @param size number of ranks N
 */
public record Shard(int rank, int size) {
    public Shard {
        if (size < 1 || rank < 0 || rank >= size) throw new IllegalArgumentException("bad shard " + rank + " of " + size);
    }

    /** The whole model on one rank. */
    public static Shard single() { return new Shard(0, 1); }

    /** Checks that the model can be split N ways; returns a message if not, else null. */
    public String incompatibility(LlamaConfig c) {
        if (c.numHeads() % size != 0) return "num_attention_heads " + c.numHeads() + " is not divisible by TP " + size;
        if (c.numKvHeads() >= size ? c.numKvHeads() % size != 0 : size % c.numKvHeads() != 0)
            return "num_key_value_heads " + c.numKvHeads() + " cannot be split or replicated over TP " + size;
        if (c.intermediateSize() % size != 0) return "intermediate_size " + c.intermediateSize() + " is not divisible by TP " + size;
        return null;
    }

    /** Query heads on this rank. */
    public int localHeads(LlamaConfig c) { return c.numHeads() / size; }

    /** First query head of this rank. */
    public int firstHead(LlamaConfig c) { return rank * localHeads(c); }

    /** KV heads on this rank: split when there are at least N, else the one its query heads use (replicated). */
    public int localKvHeads(LlamaConfig c) { return c.numKvHeads() >= size ? c.numKvHeads() / size : 1; }

    /** First KV head of this rank. */
    public int firstKvHead(LlamaConfig c) {
        if (c.numKvHeads() >= size) return rank * localKvHeads(c);
        int group = c.numHeads() / c.numKvHeads(); // query heads per KV head
        return firstHead(c) / group;
    }

    /** FFN columns on this rank. */
    public int localFfn(LlamaConfig c) { return c.intermediateSize() / size; }

    /** Vocabulary rows of the LM head per rank (the last rank may hold fewer). */
    public int vocabPerRank(LlamaConfig c) { return (c.vocabSize() + size - 1) / size; }

    /** First vocabulary row of this rank's LM head shard. */
    public int firstVocab(LlamaConfig c) { return Math.min(c.vocabSize(), rank * vocabPerRank(c)); }

    /** Vocabulary rows this rank actually holds. */
    public int localVocab(LlamaConfig c) { return Math.min(c.vocabSize(), firstVocab(c) + vocabPerRank(c)) - firstVocab(c); }
}
