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

    /**
     * The exact bytes token {@code id} appends to the output in mid-sequence (a byte-level BPE piece through the GPT-2
     * byte alphabet reversed; a SentencePiece piece with ▁ as space and {@code <0xNN>} as that one byte, which may be
     * part of a UTF-8 character), or null for a token that stands for no text: special and control tokens (BOS, EOS,
     * chat markers) and unused padding ids. Structured output builds its token masks from these bytes. Right after BOS
     * a SentencePiece decoder may drop the first piece's leading space; generated text never starts there.
     *
     * @throws UnsupportedOperationException for a tokenizer that cannot say (the default)
     */
    default byte[] outputBytes(int id) {
        throw new UnsupportedOperationException(getClass().getName() + " does not expose its tokens' bytes");
    }

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
