package dev.bdserve.tokenizer;

import java.util.BitSet;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * A GGUF vocabulary's tokenizer, as {@link GgufTokenizers#fromMetadata} builds it: {@code t} encodes the text, the
 * metadata decides the special ids (BOS, EOS, the ids that end generation), which of them {@code encode(text, true)}
 * adds, and the UNUSED (padding) tokens, which the engine masks; the USER_DEFINED ones are kept as spelled (llama.cpp's
 * converter writes the ▁ of Gemma's as spaces) for writing the vocabulary again. {@code specials} (SentencePiece
 * vocabularies only, else null) are the tokens a text may spell and the control tokens decoding skips.
 */
record GgufTokenizer(String source, Tokenizer t, int bos, int eos, int[] stops, boolean addBos, boolean addEos, BitSet unused,
                     Map<Integer, String> userDefined, SpecialTokens specials) implements Tokenizer {
    @Override public int vocabSize() { return t.vocabSize(); }
    @Override public int bosId() { return bos; }
    @Override public int[] eosIds() { return stops.clone(); }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        int[] ids = specials == null ? t.encode(text, false) : encodeParts(text);
        boolean pre = addSpecial && addBos && (ids.length == 0 || ids[0] != bos), post = addSpecial && addEos;
        if (!pre && !post) return ids;
        int[] out = new int[ids.length + (pre ? 1 : 0) + (post ? 1 : 0)];
        if (pre) out[0] = bos;
        System.arraycopy(ids, 0, out, pre ? 1 : 0, ids.length);
        if (post) out[out.length - 1] = eos;
        return out;
    }

    /**
     * SentencePiece: special tokens by their spelling, then each plain fragment encoded alone (with its own dummy
     * space prefix if any, as llama.cpp's SPM session), a ▁ in it read as the space it stands for in the pieces (as
     * llama.cpp, which escapes spaces as ▁, and Hugging Face's normalizer, which replaces them by ▁, both do).
     */
    private int[] encodeParts(String text) {
        IntStream.Builder out = IntStream.builder();
        for (SpecialTokens.Part p : specials.split(text)) {
            switch (p) {
                case SpecialTokens.Token(int id) -> out.add(id);
                case SpecialTokens.Text(String fragment) -> {
                    for (int id : t.encode(fragment.replace(HfTokenizerJsonWriter.SPACE, " "), false)) out.add(id);
                }
            }
        }
        return out.build().toArray();
    }

    /**
     * With the vocabulary's token types known: control tokens are skipped but for a leading BOS, so the text
     * after a BOS or EOS in mid-sequence keeps its space and only the very first piece loses its dummy one, as
     * the Hugging Face library decodes the same ids.
     */
    @Override public String decode(int[] ids) {
        if (specials == null) return t.decode(ids);
        IntStream.Builder kept = IntStream.builder();
        for (int i = 0; i < ids.length; i++) if (!specials.isControl(ids[i]) || (i == 0 && ids[i] == bos)) kept.add(ids[i]);
        return t.decode(kept.build().toArray());
    }

    @Override public StreamDecoder newStreamDecoder() { return t.newStreamDecoder(); }

    /** The inner tokenizer's bytes; null for unused ids and the metadata's control tokens, which decode to nothing. */
    @Override public byte[] outputBytes(int id) {
        if (id >= 0 && id < vocabSize() && (unused.get(id) || (specials != null && specials.isControl(id)))) return null;
        return t.outputBytes(id);
    }
    @Override public BitSet unusedIds() { return (BitSet) unused.clone(); }
    @Override public String toString() { return "GGUF tokenizer of " + source + " (" + t + ")"; }
}
