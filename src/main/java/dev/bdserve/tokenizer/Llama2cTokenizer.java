package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The tokenizer of Karpathy's llama2.c ({@code tokenizer.bin}, {@code tok512.bin}): a SentencePiece BPE
 * vocabulary with scores. File layout (little-endian): int32 max_token_length, then per token float32
 * score, int32 byte length, bytes. Ids 0/1/2 are {@code <unk>}/{@code <s>}/{@code </s>}; tokens
 * {@code <0xHH>} are byte-fallback tokens.
 *
 * <p>Encoding follows llama2.c's {@code encode} (and SentencePiece BPE): a dummy space is prepended to
 * non-empty text, every code point becomes its token or, if absent, its UTF-8 bytes as byte tokens, then
 * the adjacent pair whose concatenation is a vocabulary token with the highest score (leftmost on ties) is
 * merged until no pair merges ({@link ScoredBpeMerger}).
 * Control tokens (ids 0..2) and byte tokens never take part in merges and are never produced from text.
 *
 * <p>A GGUF {@code llama} vocabulary ({@link #of(String, float[], byte[][], Layout)}) may place its special and
 * control tokens elsewhere and prepend no space (Gemma: {@code <pad>}, {@code <eos>}, {@code <bos>}, {@code <unk>} at
 * 0..3, more control tokens, no prefix); its {@link Layout} says so. What is said above is llama2.c's layout.
 */
public final class Llama2cTokenizer implements Tokenizer {
    public static final int UNK = 0, BOS = 1, EOS = 2;

    /**
     * Where a vocabulary keeps its special tokens and how it treats spaces: the {@code <unk>} id (what a byte without a
     * byte token becomes; -1: none), BOS and EOS (-1: none), the control tokens (never formed from text, decoded to
     * nothing; usually the three among them), the literal tokens (never formed from text but decoded as any other:
     * a GGUF token spelled with a real space, which llama.cpp's text, its spaces written as ▁, never holds), and
     * whether a space is prepended to the text (and dropped again after BOS in decoding).
     */
    public record Layout(int unk, int bos, int eos, java.util.BitSet control, java.util.BitSet literal, boolean addSpacePrefix) {
        public Layout {
            control = (java.util.BitSet) control.clone();
            literal = (java.util.BitSet) literal.clone();
        }

        /** llama2.c's: {@code <unk>}, {@code <s>}, {@code </s>} at 0, 1, 2, a dummy space prefix. */
        public static Layout llama2c() {
            java.util.BitSet c = new java.util.BitSet();
            c.set(UNK, EOS + 1);
            return new Layout(UNK, BOS, EOS, c, new java.util.BitSet(), true);
        }

        @Override public java.util.BitSet control() { return (java.util.BitSet) control.clone(); }
        @Override public java.util.BitSet literal() { return (java.util.BitSet) literal.clone(); }
    }

    private final String source;
    private final int maxTokenLength;
    private final float[] scores;
    /** Raw token bytes as stored in the file. */
    private final byte[][] tokenBytes;
    /** Bytes a token decodes to ({@code <0xHH>} → one byte). */
    private final byte[][] pieceBytes;
    private final boolean[] isByteToken;
    /** Mergeable tokens keyed by their bytes as a Latin-1 string (so concatenation = byte concatenation). */
    private final Map<String, Integer> lookup;
    private final int unk, bos, eos;
    private final java.util.BitSet control, literal;
    private final boolean addSpacePrefix;
    private final int[] byteToId = new int[256];
    /** Single-code-point mergeable tokens: code point → id. */
    private final Map<Integer, Integer> codePointToId;
    private final ScoredBpeMerger merger;

    private Llama2cTokenizer(String source, int maxTokenLength, float[] scores, byte[][] tokenBytes, Layout layout) {
        this.source = source;
        this.unk = layout.unk();
        this.bos = layout.bos();
        this.eos = layout.eos();
        this.control = layout.control();
        this.literal = layout.literal();
        this.addSpacePrefix = layout.addSpacePrefix();
        this.maxTokenLength = maxTokenLength;
        this.scores = scores;
        this.tokenBytes = tokenBytes;
        int n = scores.length;
        this.pieceBytes = new byte[n][];
        this.isByteToken = new boolean[n];
        this.lookup = HashMap.newHashMap(n);
        java.util.Arrays.fill(byteToId, -1);
        for (int i = 0; i < n; i++) {
            int b = parseByteToken(tokenBytes[i]);
            if (b >= 0 && !control.get(i)) {
                isByteToken[i] = true;
                pieceBytes[i] = new byte[]{(byte) b};
                if (byteToId[b] < 0) byteToId[b] = i;
            } else {
                pieceBytes[i] = tokenBytes[i];
                if (!control.get(i) && !literal.get(i) && tokenBytes[i].length > 0) lookup.putIfAbsent(latin1(tokenBytes[i]), i);
            }
        }
        for (int b = 0; b < 256; b++) {
            if (byteToId[b] < 0) byteToId[b] = unk; // no byte fallback for this byte: <unk> (-1: none, refused in encoding)
        }
        this.codePointToId = new HashMap<>();
        for (int id : lookup.values()) {
            String text = new String(tokenBytes[id], StandardCharsets.UTF_8);
            if (text.codePointCount(0, text.length()) == 1
                    && java.util.Arrays.equals(text.getBytes(StandardCharsets.UTF_8), tokenBytes[id]))
                codePointToId.putIfAbsent(text.codePointAt(0), id);
        }
        this.merger = new ScoredBpeMerger(lookup, scores);
    }

    /** Loads every token in the file (the vocabulary size is the number of entries). */
    public static Llama2cTokenizer load(Path file) { return load(file, -1); }

    /**
     * Loads a llama2.c tokenizer file. If {@code expectedVocab > 0}, exactly that many tokens are read (as
     * llama2.c does with the checkpoint's vocab_size) and a shorter file is an error.
     */
    public static Llama2cTokenizer load(Path file, int expectedVocab) {
        byte[] data;
        try {
            data = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException("llama2.c tokenizer file " + file + " does not exist", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read llama2.c tokenizer file " + file + ": " + e.getMessage(), e);
        }
        return parse(data, file.toString(), expectedVocab);
    }

    /** Parses tokenizer.bin bytes; {@code source} names the file in error messages. */
    public static Llama2cTokenizer parse(byte[] data, String source, int expectedVocab) {
        ByteBuffer bb = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        if (data.length < 4)
            throw new ModelFormatException("llama2.c tokenizer file " + source + ": " + data.length
                    + " bytes, too short for the int32 max_token_length header");
        int maxLen = bb.getInt();
        if (maxLen <= 0 || maxLen > 1 << 16)
            throw new ModelFormatException("llama2.c tokenizer file " + source + ": max_token_length " + maxLen
                    + " is not plausible (expected 1..65536); is this a llama2.c tokenizer.bin?");
        var scores = new java.util.ArrayList<Float>();
        var toks = new java.util.ArrayList<byte[]>();
        while (bb.hasRemaining() && (expectedVocab <= 0 || toks.size() < expectedVocab)) {
            int i = toks.size();
            long off = bb.position();
            if (bb.remaining() < 8)
                throw new ModelFormatException("llama2.c tokenizer file " + source + ": truncated at token " + i
                        + " (offset " + off + "): need 8 bytes for score and length, " + bb.remaining() + " left");
            float score = bb.getFloat();
            int len = bb.getInt();
            if (Float.isNaN(score))
                throw new ModelFormatException("llama2.c tokenizer file " + source + ": token " + i + " (offset "
                        + off + ") has a NaN score");
            if (len < 0 || len > bb.remaining())
                throw new ModelFormatException("llama2.c tokenizer file " + source + ": token " + i + " (offset "
                        + off + ") has byte length " + len + " but " + bb.remaining() + " bytes remain");
            byte[] t = new byte[len];
            bb.get(t);
            scores.add(score);
            toks.add(t);
        }
        if (expectedVocab > 0 && toks.size() < expectedVocab)
            throw new ModelFormatException("llama2.c tokenizer file " + source + " holds " + toks.size()
                    + " tokens but the model's vocab_size is " + expectedVocab);
        if (toks.size() < 3)
            throw new ModelFormatException("llama2.c tokenizer file " + source + " holds " + toks.size()
                    + " tokens; at least <unk>, <s>, </s> (ids 0..2) are required");
        float[] s = new float[scores.size()];
        for (int i = 0; i < s.length; i++) s[i] = scores.get(i);
        return new Llama2cTokenizer(source, maxLen, s, toks.toArray(byte[][]::new), Layout.llama2c());
    }

    /**
     * A vocabulary given as pieces and scores (e.g. from a GGUF file's SentencePiece metadata, ▁ spelled as ' '):
     * ids 0..2 are {@code <unk>}, {@code <s>}, {@code </s>}; {@code <0xHH>} pieces are byte-fallback tokens.
     */
    public static Llama2cTokenizer of(String source, float[] scores, byte[][] pieces) {
        if (pieces.length < 3) throw new ModelFormatException(source + ": " + pieces.length + " tokens; at least <unk>, <s>, </s> (ids 0..2) are required");
        return of(source, scores, pieces, Layout.llama2c());
    }

    /** As {@link #of(String, float[], byte[][])} with the special tokens and space handling of {@code layout}. */
    public static Llama2cTokenizer of(String source, float[] scores, byte[][] pieces, Layout layout) {
        if (scores.length != pieces.length) throw new IllegalArgumentException(scores.length + " scores for " + pieces.length + " pieces");
        for (int id : new int[]{layout.unk(), layout.bos(), layout.eos()})
            if (id >= pieces.length)
                throw new ModelFormatException(source + ": special token id " + id + " outside the vocabulary of " + pieces.length);
        if (layout.control().length() > pieces.length || layout.literal().length() > pieces.length)
            throw new ModelFormatException(source + ": control or literal token id " + (Math.max(layout.control().length(), layout.literal().length()) - 1)
                    + " outside the vocabulary of " + pieces.length);
        int maxLen = 1;
        for (byte[] p : pieces) maxLen = Math.max(maxLen, p.length);
        return new Llama2cTokenizer(source, maxLen, scores.clone(), pieces.clone(), layout);
    }

    /** Its special tokens and space handling. */
    public Layout layout() { return new Layout(unk, bos, eos, control, literal, addSpacePrefix); }

    /** The {@code <unk>} id, or -1. */
    public int unkId() { return unk; }

    /** Whether the token is a control token: never formed from text, decoded to nothing. */
    public boolean isControl(int id) { return control.get(id); }

    /** The file (or name) this tokenizer was read from. */
    public String source() { return source; }

    public int maxTokenLength() { return maxTokenLength; }

    public float score(int id) { return scores[id]; }

    /** The token's bytes as stored in the file (llama2.c writes spaces for SentencePiece's ▁). */
    public byte[] tokenBytes(int id) { return tokenBytes[id].clone(); }

    /** The token as text (UTF-8 decoded raw bytes, e.g. {@code " Hello"}, {@code "<0x0A>"}). */
    public String tokenString(int id) { return new String(tokenBytes[id], StandardCharsets.UTF_8); }

    /** Whether the token is a {@code <0xHH>} byte-fallback token. */
    public boolean isByteToken(int id) { return isByteToken[id]; }

    /** Id of a mergeable (non-control, non-byte) token with exactly this text, or -1. */
    public int tokenId(String text) {
        Integer id = lookup.get(latin1(text.getBytes(StandardCharsets.UTF_8)));
        return id == null ? -1 : id;
    }

    @Override public int vocabSize() { return scores.length; }
    @Override public int bosId() { return bos; }
    @Override public int[] eosIds() { return eos < 0 ? new int[0] : new int[]{eos}; }

    // ---------------------------------------------------------------- encoding

    @Override
    public int[] encode(String text, boolean addBos) {
        int cpCount = text.isEmpty() ? 0 : text.codePointCount(0, text.length()) + 1;
        // initial symbols: token ids (byte fallback may give several per code point)
        int[] ids = new int[cpCount * 4 + 1];
        int n = 0;
        if (!text.isEmpty()) {
            if (addSpacePrefix) n = appendCodePoint(' ', ids, n);
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                i += Character.charCount(cp);
                if (Character.isSurrogate((char) cp) && cp < 0x10000) cp = 0xFFFD; // unpaired surrogate
                n = appendCodePoint(cp, ids, n);
            }
        }
        int[] merged = merger.merge(ids, n);
        if (!addBos || bos < 0) return merged;
        int[] out = new int[merged.length + 1];
        out[0] = bos;
        System.arraycopy(merged, 0, out, 1, merged.length);
        return out;
    }

    private int appendCodePoint(int cp, int[] ids, int n) {
        Integer direct = codePointToId.get(cp);
        if (direct != null) {
            ids[n++] = direct;
            return n;
        }
        byte[] utf8 = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
        Integer id = lookup.get(latin1(utf8));
        if (id != null) {
            ids[n++] = id;
        } else {
            for (byte b : utf8) {
                ids[n] = byteToId[b & 0xFF];
                if (ids[n++] < 0)
                    throw new IllegalArgumentException(source + " has neither a byte token <0x" + String.format("%02X", b & 0xFF)
                            + "> nor an <unk> token for character U+" + Integer.toHexString(cp).toUpperCase());
            }
        }
        return n;
    }

    // ---------------------------------------------------------------- decoding

    /** Bytes of token {@code id}; null for skipped (control) tokens. */
    private byte[] bytesOf(int id) {
        if (id < 0 || id >= scores.length)
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + source
                    + " (size " + scores.length + ")");
        if (isControl(id)) return null;
        return pieceBytes[id];
    }

    /** llama2.c: a token following BOS loses its leading space (SentencePiece's dummy prefix, when the vocabulary adds one). */
    @Override
    public String decode(int[] ids) {
        var out = new java.io.ByteArrayOutputStream();
        int prev = -1;
        for (int id : ids) {
            byte[] p = bytesOf(id);
            if (p != null) {
                int s = PieceStreamDecoder.spaceToSkip(addSpacePrefix, bos, prev, p, isByteToken[id]);
                out.write(p, s, p.length - s);
            }
            prev = id;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The piece's bytes (a byte token's one byte, spaces for ▁); null for control tokens. */
    @Override
    public byte[] outputBytes(int id) {
        byte[] p = bytesOf(id);
        return p == null ? null : p.clone();
    }

    /** As {@link #decode}, a token's bytes at a time. */
    @Override
    public StreamDecoder newStreamDecoder() {
        return new PieceStreamDecoder(this::bytesOf, id -> isByteToken[id], bos, addSpacePrefix);
    }

    // ---------------------------------------------------------------- helpers

    /** Returns HH for a token spelled exactly {@code <0xHH>}, else -1. */
    static int parseByteToken(byte[] t) {
        if (t.length != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
        int hi = Character.digit(t[3], 16), lo = Character.digit(t[4], 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    static String latin1(byte[] b) { return new String(b, StandardCharsets.ISO_8859_1); }

    @Override public String toString() { return "Llama2cTokenizer[" + source + ", vocab " + scores.length + "]"; }
}
