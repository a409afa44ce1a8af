package dev.bdserve.tensor.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import dev.bdserve.tensor.VectorWidth;

import java.util.Arrays;
import java.util.List;

/**
 * One of ggml's block-quantized storage formats (Q4_0, Q5_K, ...): a row is a run of whole blocks of
 * {@link #blockSize()} weights in {@link #blockBytes()} bytes, laid out as llama.cpp's {@code block_*} structs.
 * Each format holds the vector kernels over such rows: decoding to fp32 (equal bit for bit to ggml's
 * {@code dequantize_row_*}, whose scalar form in {@code model.gguf.GgmlCodec} is the slow twin the tests compare
 * against) and the decode-time GEMV, which keeps the activations in fp32 (Q4_K's and Q6_K's quantize them).
 *
 * <p>Kernels run at {@link VectorWidth}: {@link #FS} floats per vector, bytes loaded {@link #BS} at a time.
 */
public abstract class BlockFormat {
    /** Floats per vector. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Bytes per load: VL of them, or 8 (the narrowest byte vector) when VL is 4. */
    static final VectorSpecies<Byte> BS = VL >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(VL * 8)) : ByteVector.SPECIES_64;
    /** Float vectors per byte vector. */
    static final int PARTS = BS.length() / VL;

    /** Weights per sum of activations that {@link #gemv} takes ({@link #usesSums}). */
    public static final int SUM_GROUP = 32;

    BlockFormat() {}

    /** The format's name as llama.cpp spells it in lower case: "q4_0", "q4_k", ... */
    public abstract String name();

    /** Weights per block. */
    public abstract int blockSize();

    /** Bytes per block. */
    public abstract int blockBytes();

    /**
     * Whether {@link #gemv} needs the sums of the activations over each {@value #SUM_GROUP} weights (formats with an
     * offset, w = d·q − m: the offset's share of a dot product is m·Σx).
     */
    public boolean usesSums() { return false; }

    /** dst[dstOff + i] for i &lt; blocks·blockSize: the weights of the blocks at src[off ..]. */
    public abstract void decode(byte[] src, int off, float[] dst, int dstOff, int blocks);

    /**
     * {@code rows} rows of {@code blocks} blocks each, the file's layout, in the layout {@link #gemv} and {@link
     * #decodePacked} read, row r still at r·blocks·blockBytes: the same array when the format keeps the file's layout
     * (the default), else a new one, the format's fields regrouped within each row (Q4_K, Q6_K).
     */
    byte[] pack(byte[] data, int rows, int blocks) { return data; }

    /**
     * The activations x[0 .. n) as {@link #gemv} takes them: x itself (the default), or a copy in the order a
     * format's packed rows keep their weights in (Q4_K, Q6_K), made once per product.
     */
    float[] activations(float[] x, int n) { return x; }

    /** As {@link #decode}, for one row of {@code blocks} blocks at packed[off] in {@link #pack}'s layout. */
    void decodePacked(byte[] packed, int off, float[] dst, int dstOff, int blocks) { decode(packed, off, dst, dstOff, blocks); }

    /**
     * As {@link #decodePacked}, but the row's weights in the order {@link #activations} puts x in (the same for a format
     * that keeps x as it is): a product of several tokens widens rows this way and permutes its x to match.
     */
    void decodePanel(byte[] packed, int off, float[] dst, int dstOff, int blocks) { decodePacked(packed, off, dst, dstOff, blocks); }

    /**
     * One token's activations x[0 .. n) as {@link #gemv} takes them: by default x in the order of {@link #activations}
     * and, when {@link #usesSums}, the sums of each {@value #SUM_GROUP} values; a format with an integer GEMV
     * quantizes them instead (Q4_K, Q6_K).
     */
    Activations gemvActivations(float[] x, int n) {
        return new Activations(activations(x, n), usesSums() ? QuantMatrix.groupSums(x, n) : null, null, null, 0);
    }

    /**
     * The activations x[0 .. n) as {@link #gemv}'s products see them: x itself for a format that keeps them in fp32
     * (the default), else their values once quantized. The tests' reference products use these.
     */
    float[] gemvInput(float[] x, int n) { return Arrays.copyOf(x, n); }

    /**
     * y[o] = Σ_i w[o, i]·x[i] for rows o in [from, to) of a weight stored row after row, each {@code blocks} blocks
     * in {@link #pack}'s layout, x as {@link #gemvActivations} gives it.
     */
    abstract void gemv(byte[] w, int blocks, Activations x, float[] y, int from, int to);

    /** The format named {@code name} (as {@link #name()} spells it), or null when bdserve has no kernels for it. */
    public static BlockFormat of(String name) {
        for (BlockFormat f : all()) if (f.name().equals(name)) return f;
        return null;
    }

    /** Every format bdserve has kernels for. */
    public static List<BlockFormat> all() {
        return List.of(Q4_0.INSTANCE, Q4_1.INSTANCE, Q5_0.INSTANCE, Q5_1.INSTANCE, Q4_K.INSTANCE, Q5_K.INSTANCE, Q6_K.INSTANCE);
    }

    @Override public String toString() { return name(); }
}
