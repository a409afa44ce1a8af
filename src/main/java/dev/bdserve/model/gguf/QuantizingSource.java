package dev.bdserve.model.gguf;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Q8Matrix;
import dev.bdserve.tensor.Weight;
import dev.bdserve.tensor.quant.BlockFormat;
import dev.bdserve.tensor.quant.QuantMatrix;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * A float model (an HF folder, or an F32/F16/BF16 GGUF) whose matrices are quantized as they load, each to the type
 * a {@link GgufRecipe} gives it: {@link #weight} returns what {@link GgufModelSource#weight} returns for the file
 * {@link GgufModelWriter} would write with that recipe (Q8_0 as a {@link Q8Matrix}, other block types as a
 * {@link QuantMatrix}, an F16 fallback as F16), and {@link #matrix} that file's dequantized weights, so a model
 * quantized at load runs exactly as its quantized GGUF does. Blocks never straddle rows or each other, so a slice
 * quantized alone has the same bytes as that part of the whole row; a column slice must keep whole blocks.
 */
public final class QuantizingSource implements TensorSource {
    private final TensorSource base;
    private final GgufRecipe recipe;

    private QuantizingSource(TensorSource base, GgufRecipe recipe) {
        this.base = base;
        this.recipe = recipe;
    }

    /**
     * {@code base} quantized by {@code recipe} at load.
     *
     * @throws IllegalArgumentException naming the file and tensor when {@code base} is a GGUF whose matrices are
     *                                  already quantized (requantizing would add a second rounding error)
     */
    public static QuantizingSource of(TensorSource base, GgufRecipe recipe) {
        if (base instanceof GgufModelSource g) requireFloat(Path.of(g.describe()));
        return new QuantizingSource(base, recipe);
    }

    /**
     * Throws, naming the file and its first quantized tensor, when the GGUF at {@code gguf} holds quantized
     * tensors: bdserve quantizes float weights only, it does not dequantize and requantize.
     */
    public static void requireFloat(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            for (GgufFile.TensorInfo t : f.tensors())
                if (t.type().quantized())
                    throw new IllegalArgumentException(gguf + " is already quantized (tensor " + t.name() + " is " + t.type()
                            + "); quantize takes an HF model or an F32/F16/BF16 GGUF, it does not requantize (that would round twice)");
        }
    }

    /** The type of the 2-D tensor {@code name} (an HF name) under the recipe, or null for one it leaves alone (rank ≠ 2). */
    GgmlType typeOf(String name) {
        long[] s = base.shape(name);
        if (s.length != 2) return null;
        LlamaConfig c = base.config();
        return recipe.typeOf(GgufModelSource.ggufName(name, c.variant()), s[1], c);
    }

    @Override public Weight weight(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        GgmlType t = typeOf(name);
        if (t == null || !t.quantized()) return matrix(name, rowFrom, rowTo, colFrom, colTo);
        requireColumnSlice(name, colFrom, colTo);
        int r = rowTo - rowFrom, c = colTo - colFrom, bs = t.blockSize, blocks = c / bs;
        byte[] q = quantize(t, base.matrix(name, rowFrom, rowTo, colFrom, colTo).toFloats(), r, c);
        if (t == GgmlType.Q8_0) {                                        // split block_q8_0 into int8 quants and fp16 scales
            byte[] qs = new byte[Math.multiplyExact(r, c)];
            short[] d = new short[r * blocks];
            java.lang.foreign.MemorySegment m = java.lang.foreign.MemorySegment.ofArray(q);
            for (int b = 0; b < r * blocks; b++) {
                d[b] = m.get(GgmlCodec.HALF, (long) b * t.blockBytes);
                System.arraycopy(q, b * t.blockBytes + 2, qs, b * bs, bs);
            }
            return new Q8Matrix(r, c, qs, d);
        }
        BlockFormat f = BlockFormat.of(t.name().toLowerCase(Locale.ROOT));
        if (f == null) return dequantized(t, q, r, c);
        return new QuantMatrix(f, r, c, q);
    }

    @Override public Matrix matrix(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        GgmlType t = typeOf(name);
        if (t == null || t == GgmlType.F32) return base.matrix(name, rowFrom, rowTo, colFrom, colTo);
        int r = rowTo - rowFrom, c = colTo - colFrom;
        float[] x = base.matrix(name, rowFrom, rowTo, colFrom, colTo).toFloats();
        if (t == GgmlType.F16) {
            short[] h = new short[x.length];
            for (int i = 0; i < x.length; i++) h[i] = GgmlCodec.floatToHalf(x[i]);
            return Matrix.ofBits(DType.F16, r, c, h);
        }
        requireColumnSlice(name, colFrom, colTo);
        return dequantized(t, quantize(t, x, r, c), r, c);
    }

    /** {@code r} rows of {@code c} weights quantized to {@code t}, row by row in parallel, as one run of blocks. */
    private static byte[] quantize(GgmlType t, float[] x, int r, int c) {
        int rowBytes = Math.toIntExact(t.bytes(c));
        byte[] q = new byte[Math.multiplyExact(r, rowBytes)];
        IntStream.range(0, r).parallel().forEach(i -> GgmlCodec.quantize(t, x, i * c, c, q, i * rowBytes));
        return q;
    }

    private static Matrix dequantized(GgmlType t, byte[] q, int r, int c) {
        float[] y = new float[Math.multiplyExact(r, c)];
        GgmlCodec.dequantize(t, java.lang.foreign.MemorySegment.ofArray(q), 0, y, 0, y.length);
        return Matrix.ofF32(r, c, y);
    }

    /** A quantized matrix splits between its blocks only. */
    @Override public void requireColumnSlice(String name, int colFrom, int colTo) {
        GgmlType t = typeOf(name);
        if (t != null && t.quantized() && (colFrom % t.blockSize != 0 || colTo % t.blockSize != 0))
            throw new ModelFormatException(base.describe() + ": tensor '" + name + "' (quantized at load to " + t + ", blocks of " + t.blockSize
                    + " weights) cannot be split at columns [" + colFrom + ", " + colTo + "): a tensor-parallel rank must hold whole blocks;"
                    + " use a --tp that divides its " + base.shape(name)[1] / t.blockSize + " blocks per row");
        base.requireColumnSlice(name, colFrom, colTo);
    }

    @Override public DType dtype(String name) {
        GgmlType t = typeOf(name);
        if (t == null || t == GgmlType.F32) return base.dtype(name);
        return t == GgmlType.F16 ? DType.F16 : DType.F32;
    }

    @Override public LlamaConfig config() { return base.config(); }
    @Override public Set<String> names() { return base.names(); }
    @Override public long[] shape(String name) { return base.shape(name); }
    @Override public float[] vector(String name) { return base.vector(name); }
    @Override public String describe() { return base.describe() + " quantized at load (" + recipe.label() + ")"; }
    @Override public void close() { base.close(); }
}
