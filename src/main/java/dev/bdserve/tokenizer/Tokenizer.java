package dev.bdserve.tokenizer;

/** Text ↔ token ids. Implementations are immutable and thread-safe. */
public interface Tokenizer {
    int vocabSize();

    /** Token id of BOS, or -1. */
    int bosId();

    /** Token ids that end generation. */
    int[] eosIds();

    /**
     * Encodes text. With {@code addSpecial}, adds the special tokens the model's own tokenizer adds around a text:
     * BOS for most models, nothing for some (Qwen2), an EOS after the text for a few.
     */
    int[] encode(String text, boolean addSpecial);

    /**
     * Ids of the vocabulary that stand for no text and are never to be sampled (a GGUF vocabulary's UNUSED padding
     * tokens); the engine masks them as it masks ids past {@link #vocabSize}.
     */
    default java.util.BitSet unusedIds() { return new java.util.BitSet(); }

    /** Decodes ids to text (special tokens such as BOS/EOS are skipped). */
    String decode(int[] ids);

    /**
     * A per-sequence incremental decoder: it returns the text that the newly added token completes,
     * holding back bytes of a UTF-8 character that is split across tokens.
     */
    StreamDecoder newStreamDecoder();

    /** Incremental decoder state; one per sequence, not thread-safe. */
    interface StreamDecoder {
        /** Adds a token and returns the newly completed text ("" when it ends inside a character). */
        String push(int id);

        /** Returns whatever is held back (invalid trailing bytes become U+FFFD). */
        String flush();
    }
}
