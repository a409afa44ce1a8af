package dev.bdserve.engine;

import java.util.Arrays;
import java.util.BitSet;

/**
 * The token ids a request may sample next; every other id's logit becomes −Inf before sampling. The padding of a
 * model vocabulary larger than the tokenizer's is one; a grammar's next allowed tokens are another.
 */
public final class TokenMask {
    private final int below;        // ids ≥ this are disallowed (−1: no prefix rule)
    private final BitSet allowed;   // or: exactly these are allowed (null: no set rule)

    private TokenMask(int below, BitSet allowed) {
        this.below = below;
        this.allowed = allowed;
    }

    /** Allows ids [0, n). */
    public static TokenMask below(int n) {
        if (n < 1) throw new IllegalArgumentException("a mask must allow at least one token id, got " + n);
        return new TokenMask(n, null);
    }

    /**
     * The mask of a model vocabulary padded past the tokenizer's (real checkpoints pad it): ids the tokenizer knows;
     * null when it knows every row. Throws {@link IllegalArgumentException} when the tokenizer knows more ids than the
     * model has rows: then they do not belong together.
     */
    public static TokenMask forVocabularies(int tokenizerVocab, int modelVocab) { return forVocabularies(tokenizerVocab, modelVocab, new BitSet()); }

    /** As {@link #forVocabularies(int, int)}, disallowing the tokenizer's {@code unused} ids too. */
    public static TokenMask forVocabularies(int tokenizerVocab, int modelVocab, BitSet unused) {
        if (tokenizerVocab > modelVocab)
            throw new IllegalArgumentException("the tokenizer knows " + tokenizerVocab + " token ids but the model's vocabulary has only "
                    + modelVocab + " rows (vocab_size): the tokenizer does not belong to this model");
        if (unused.isEmpty()) return tokenizerVocab < modelVocab ? below(tokenizerVocab) : null;
        BitSet allowed = new BitSet(tokenizerVocab);
        allowed.set(0, tokenizerVocab);
        allowed.andNot(unused);
        return of(allowed);
    }

    /** Allows exactly the ids set in {@code allowed} (copied). */
    public static TokenMask of(BitSet allowed) {
        if (allowed.isEmpty()) throw new IllegalArgumentException("a mask must allow at least one token id");
        return new TokenMask(-1, (BitSet) allowed.clone());
    }

    public boolean allows(int id) { return allowed != null ? allowed.get(id) : id < below; }

    /** Sets the logits of disallowed ids in logits[off .. off+vocab) to −Inf. */
    public void apply(float[] logits, int off, int vocab) {
        if (allowed == null) {
            if (below < vocab) Arrays.fill(logits, off + below, off + vocab, Float.NEGATIVE_INFINITY);
            return;
        }
        int next = 0;
        for (int id = allowed.nextSetBit(0); id >= 0 && id < vocab; id = allowed.nextSetBit(id + 1)) {
            Arrays.fill(logits, off + next, off + id, Float.NEGATIVE_INFINITY);
            next = id + 1;
        }
        Arrays.fill(logits, off + Math.min(next, vocab), off + vocab, Float.NEGATIVE_INFINITY);
    }
}
