package dev.bdserve.model;

import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Numerics;

import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A random-weight Llama at a given shape, deterministic from a seed: each tensor is drawn from its own
 * stream (seed mixed with the tensor name), so any tensor or shard can be produced on its own. Matrices
 * are uniform with standard deviation 1/sqrt(in_features) (activations stay O(1) through the layers),
 * norm weights (the q/k norms of Qwen3 included) are 1 ± 0.1 (± 0.1 where norms scale by 1 + w, as Gemma's), projection biases (Qwen2) uniform in ±0.5. The config's
 * {@link DecoderVariant} decides which tensors exist ({@link LlamaTensorNames#expectedShapes}). Used by tests and benchmarks and written out by {@code synth model}.
 */
public final class SynthModel implements TensorSource {
    private final LlamaConfig config;
    private final DType dtype;
    private final long seed;
    private final Map<String, long[]> shapes;

    public SynthModel(LlamaConfig config, DType dtype, long seed) {
        this.config = config;
        this.dtype = dtype;
        this.seed = seed;
        this.shapes = LlamaTensorNames.expectedShapes(config);
    }

    @Override public LlamaConfig config() { return config; }
    @Override public Set<String> names() { return shapes.keySet(); }

    @Override public long[] shape(String name) {
        long[] s = shapes.get(name);
        if (s == null) throw new ModelFormatException(describe() + ": no tensor " + name);
        return s.clone();
    }

    private SplittableRandom stream(String name) {
        long h = seed * 0x9E3779B97F4A7C15L;
        for (int i = 0; i < name.length(); i++) h = (h ^ name.charAt(i)) * 0x100000001B3L;
        return new SplittableRandom(h);
    }

    @Override
    public Matrix matrix(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        long[] s = shape(name);
        if (s.length != 2) throw new ModelFormatException(describe() + ": tensor " + name + " is not a matrix");
        int rows = (int) s[0], cols = (int) s[1];
        if (rowFrom < 0 || rowTo > rows || rowFrom >= rowTo || colFrom < 0 || colTo > cols || colFrom >= colTo)
            throw new IllegalArgumentException(name + ": bad slice");
        Matrix whole = generate(name, rows, cols);
        Matrix m = (rowFrom == 0 && rowTo == rows) ? whole : whole.sliceRows(rowFrom, rowTo);
        return (colFrom == 0 && colTo == cols) ? m : m.sliceCols(colFrom, colTo);
    }

    private Matrix generate(String name, int rows, int cols) {
        SplittableRandom r = stream(name);
        float a = (float) (Math.sqrt(3.0 / cols));   // uniform(-a, a) has std 1/sqrt(cols)
        int n = rows * cols;
        if (dtype == DType.F32) {
            float[] f = new float[n];
            for (int i = 0; i < n; i++) f[i] = (r.nextFloat() * 2 - 1) * a;
            return Matrix.ofF32(rows, cols, f);
        }
        short[] b = new short[n];
        for (int i = 0; i < n; i++) {
            float v = (r.nextFloat() * 2 - 1) * a;
            b[i] = dtype == DType.BF16 ? Numerics.floatToBf16(v) : Numerics.floatToF16(v);
        }
        return Matrix.ofBits(dtype, rows, cols, b);
    }

    @Override
    public float[] vector(String name) {
        long[] s = shape(name);
        if (s.length != 1) throw new ModelFormatException(describe() + ": tensor " + name + " is not a vector");
        SplittableRandom r = stream(name);
        float[] v = new float[(int) s[0]];
        boolean bias = name.endsWith(".bias");                       // q/k/v biases (Qwen2): uniform ±0.5, not 1 ± 0.1
        float center = config.variant().norm() == DecoderVariant.Norm.ONE_PLUS_WEIGHT ? 0 : 1;  // Gemma norms scale by 1 + w
        for (int i = 0; i < v.length; i++) {
            float x = bias ? (r.nextFloat() * 2 - 1) * 0.5f : center + (r.nextFloat() * 2 - 1) * 0.1f;
            v[i] = dtype == DType.BF16 ? Numerics.bf16ToFloat(Numerics.floatToBf16(x))
                    : dtype == DType.F16 ? Numerics.f16ToFloat(Numerics.floatToF16(x)) : x;
        }
        return v;
    }

    /** The dtype the matrices are generated in. */
    public DType dtype() { return dtype; }

    @Override public DType dtype(String name) { shape(name); return dtype; }

    @Override public String describe() { return "synthetic model (seed " + seed + ", " + dtype + ")"; }
    @Override public void close() {}
}
