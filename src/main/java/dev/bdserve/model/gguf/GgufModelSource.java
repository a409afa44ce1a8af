package dev.bdserve.model.gguf;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.Rope;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Q8Matrix;
import dev.bdserve.tensor.quant.BlockFormat;
import dev.bdserve.tensor.quant.QuantMatrix;
import dev.bdserve.tensor.Weight;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@code llama}, {@code qwen2} or {@code qwen3}-architecture GGUF file as a {@link TensorSource} in Hugging Face names
 * and layout, the way llama.cpp's {@code src/models/llama.cpp} (qwen2.cpp, qwen3.cpp) reads it. The config comes from
 * the {@code <architecture>.*} metadata; qwen2 adds the q/k/v biases ({@code blk.N.attn_q.bias}), qwen3 the per-head
 * q/k norms ({@code blk.N.attn_q_norm.weight}). Quantized
 * tensors are dequantized at load to fp32 (exactly ggml's {@code to_float}); F16 and BF16 tensors keep their dtype.
 *
 * <p>llama.cpp's converter stores the q and k rows of {@code llama} models permuted from HF's rotate-half order into
 * interleaved pairs (rope type NORM): per head, GGUF row 2j is HF row j and GGUF row 2j + 1 is HF row head_dim/2 + j.
 * Qwen's keep HF's order (rope type NEOX). Rows are mapped back at load, so HF-layout adapters (PEFT) apply to the right rows at every TP degree.
 */
public final class GgufModelSource implements TensorSource {

    /** Where an HF tensor lives in the file, and whether its rows are RoPE-permuted. */
    private record Loc(GgufFile.TensorInfo info, int rows, int cols, boolean rope) {}

    /** llama.cpp's long-context rope factors (one per frequency), shared by every layer. */
    static final String ROPE_FREQS = "rope_freqs.weight";

    private final GgufFile file;
    private final LlamaConfig config;
    private final Map<String, Loc> tensors;   // HF name → location, in HF order

    private GgufModelSource(GgufFile file, LlamaConfig config, Map<String, Loc> tensors) {
        this.file = file;
        this.config = config;
        this.tensors = tensors;
    }

    /** Opens a GGUF model file; throws {@link ModelFormatException} naming the file and the key or tensor at fault. */
    public static GgufModelSource open(Path path) {
        GgufFile f = GgufFile.open(path);
        try {
            String arch = f.string("general.architecture");
            if (!ARCHITECTURES.contains(arch))
                throw new ModelFormatException(path + ": general.architecture '" + arch + "' is not supported (supported: "
                        + String.join(", ", ARCHITECTURES) + ")");
            if (f.string("general.type", "model").equals("adapter"))
                throw new ModelFormatException(path + ": a GGUF LoRA adapter, not a model");
            LlamaConfig c = config(f);
            Map<String, Loc> t = new LinkedHashMap<>();
            for (var e : LlamaTensorNames.expectedShapes(c).entrySet()) {
                String gguf = ggufName(e.getKey(), c.variant());
                if (!f.hasTensor(gguf)) throw new ModelFormatException(path + ": tensor " + gguf + " (" + e.getKey() + ") is missing");
                GgufFile.TensorInfo info = f.tensor(gguf);
                long[] want = e.getValue(), dims = info.dims();          // GGUF dims are innermost first: [in, out]
                long[] hf = new long[dims.length];
                for (int i = 0; i < dims.length; i++) hf[i] = dims[dims.length - 1 - i];
                if (!Arrays.equals(hf, want))
                    throw new ModelFormatException(path + ": tensor " + gguf + " has shape " + Arrays.toString(hf) + " (HF order), expected "
                            + Arrays.toString(want) + " for " + e.getKey());
                // only llama's converter permutes q/k rows; qwen2/qwen3 keep HF order (llama.cpp rope type NEOX)
                boolean rope = arch.equals("llama") && (gguf.endsWith("attn_q.weight") || gguf.endsWith("attn_k.weight"));
                t.put(e.getKey(), new Loc(info, want.length == 2 ? (int) want[0] : 1, (int) want[want.length - 1], rope));
            }
            return new GgufModelSource(f, c, Collections.unmodifiableMap(t));
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    /** The model's hyper-parameters from the {@code llama.*} keys (llama.cpp's names), checked against the tensors. */
    static LlamaConfig config(GgufFile f) {
        String arch = f.string("general.architecture");
        String p = arch + ".";
        int hidden = (int) f.longValue(p + "embedding_length"), heads = (int) f.longValue(p + "attention.head_count");
        int headDim = (int) f.longValue(p + "attention.key_length", heads == 0 ? 0 : hidden / heads);
        long ropeDims = f.longValue(p + "rope.dimension_count", headDim);
        if (ropeDims != headDim)
            throw new ModelFormatException(f.path() + ": llama.rope.dimension_count " + ropeDims + " differs from the head size " + headDim
                    + " (partial rotary embeddings are not supported)");
        if (f.has(p + "rope.scaling.type") && !f.string(p + "rope.scaling.type").equals("none") && !arch.equals("phi3"))
            throw new ModelFormatException(f.path() + ": " + p + "rope.scaling.type '" + f.string(p + "rope.scaling.type") + "' is not supported");
        boolean gemma = arch.startsWith("gemma"), phi3 = arch.equals("phi3");
        if (!gemma && !phi3 && f.has(p + "attention.sliding_window") && f.longValue(p + "attention.sliding_window") > 0)
            throw new ModelFormatException(f.path() + ": " + p + "attention.sliding_window is not supported in " + arch + " GGUF files");
        double theta = f.doubleValue(p + "rope.freq_base", 10000.0);
        GgufFile.TensorInfo embd = f.hasTensor("token_embd.weight") ? f.tensor("token_embd.weight") : null;
        if (embd == null) throw new ModelFormatException(f.path() + ": tensor token_embd.weight is missing");
        long vocab = f.longValue(p + "vocab_size", embd.dims()[embd.dims().length - 1]);
        // special ids only as the file names them; the tokenizer applies llama.cpp's defaults for its vocabulary type
        List<Integer> eos = f.has("tokenizer.ggml.eos_token_id") ? List.of((int) f.longValue("tokenizer.ggml.eos_token_id")) : List.of();
        int bos = f.has("tokenizer.ggml.bos_token_id") ? (int) f.longValue("tokenizer.ggml.bos_token_id") : -1;
        try {
            int context = (int) f.longValue(p + "context_length");
            return new LlamaConfig((int) vocab, hidden, (int) f.longValue(p + "feed_forward_length"), (int) f.longValue(p + "block_count"),
                    heads, (int) f.longValue(p + "attention.head_count_kv", heads), headDim, context,
                    (float) f.doubleValue(p + "attention.layer_norm_rms_epsilon"), theta, phi3 ? longRope(f, headDim, context) : ropeScaling(f, headDim, theta),
                    !f.hasTensor("output.weight"), bos, eos, "float32", switch (arch) {
                        case "qwen2" -> DecoderVariant.qwen2(0);                     // llama.cpp src/models/qwen2.cpp: bq/bk/bv
                        case "qwen3" -> DecoderVariant.qwen3(0);                     // src/models/qwen3.cpp: attn_q_norm/attn_k_norm
                        case "gemma2", "gemma3" -> gemmaVariant(f, arch, hidden, heads, headDim);
                        // src/models/phi3.cpp: attn_qkv and a [gate; up] ffn_up; its window is honoured here (llama.cpp disables it)
                        case "phi3" -> DecoderVariant.phi3((int) f.longValue(p + "attention.sliding_window", 0));
                        default -> DecoderVariant.LLAMA;
                    });
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(f.path() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Llama 3.1 / 3.2 long-context rope, which llama.cpp's converter stores as the tensor {@code rope_freqs.weight}
     * (F32, [head_dim/2] divisors of the inverse frequencies): read as the llama3 rope_scaling of every released
     * Llama 3.x (low 1, high 4, original context 8192, factor = the largest divisor) when it gives the same factors,
     * so the model converts back to config.json; as the factors themselves otherwise.
     */
    private static LlamaConfig.RopeScaling ropeScaling(GgufFile f, int headDim, double theta) {
        if (!f.hasTensor(ROPE_FREQS)) return null;
        GgufFile.TensorInfo t = f.tensor(ROPE_FREQS);
        if (t.type() != GgmlType.F32 || t.dims().length != 1 || t.dims()[0] != headDim / 2)
            throw new ModelFormatException(f.path() + ": tensor " + ROPE_FREQS + " is " + t.type() + " " + Arrays.toString(t.dims())
                    + ", expected F32 [" + headDim / 2 + "] (one factor per rope frequency)");
        float[] factors = new float[headDim / 2];
        GgmlCodec.dequantize(GgmlType.F32, f.data(t), 0, factors, 0, factors.length);
        try {
            var given = new LlamaConfig.RopeScaling.Factors(factors);
            float max = 0;
            for (float x : factors) max = Math.max(max, x);
            if (max < 1) return given;
            var llama3 = new LlamaConfig.RopeScaling.Llama3(max, 1, 4, 8192);
            float[] want = llama3.frequencyFactors(headDim, theta);
            for (int i = 0; i < want.length; i++) if (Math.abs(want[i] - factors[i]) > 1e-6f * factors[i]) return given;
            return llama3;
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(f.path() + ": tensor " + ROPE_FREQS + ": " + e.getMessage(), e);
        }
    }

    /**
     * Gemma 2 and 3 as llama.cpp reads them (src/models/gemma2.cpp, gemma3.cpp): norms stored as 1 + w (so scaling by
     * w), a window on layers i with i mod n < n − 1 (n from attention.sliding_window_pattern, default 2 and 6; Gemma 3
     * without attention.sliding_window has none), Gemma 2's soft-caps (defaults 50 and 30), Gemma 3's final one if
     * given, the windowed layers' RoPE base rope.freq_base_swa (Gemma 3, default 10000), and scores scaled by
     * 1/√head_dim, or 1/√(hidden/heads) for the 46- and 62-layer models (27B) as llama.cpp derives it.
     */
    private static DecoderVariant gemmaVariant(GgufFile f, String arch, int hidden, int heads, int headDim) {
        String p = arch + ".";
        boolean g2 = arch.equals("gemma2");
        int window = (int) f.longValue(p + "attention.sliding_window", g2 ? 4096 : 0);
        int pattern = g2 ? 2 : 6;
        if (f.has(p + "attention.sliding_window_pattern")) {
            if (!(f.metadata().get(p + "attention.sliding_window_pattern") instanceof Number n))
                throw new ModelFormatException(f.path() + ": " + p + "attention.sliding_window_pattern as a per-layer list is not supported");
            pattern = n.intValue();
        }
        long layers = f.longValue(p + "block_count");
        float qpas = layers == (g2 ? 46 : 62) ? (float) hidden / heads : headDim;
        float attnCap = g2 ? (float) f.doubleValue(p + "attn_logit_softcapping", 50.0) : 0f;
        float finalCap = (float) f.doubleValue(p + "final_logit_softcapping", g2 ? 30.0 : 0.0);
        DecoderVariant v = g2 ? DecoderVariant.gemma2(DecoderVariant.Norm.WEIGHT, window, attnCap, finalCap, qpas)
                : DecoderVariant.gemma3(DecoderVariant.Norm.WEIGHT, window, pattern, f.doubleValue(p + "rope.freq_base_swa", 10000.0), qpas);
        return new DecoderVariant(v.family(), v.qkvBias(), v.qkNorm(), v.norm(), v.activation(), false, false, window, pattern, true, true,
                v.attnSoftcap(), v.finalSoftcap(), qpas, v.localRopeTheta());
    }

    /** Phi-3's LongRoPE as llama.cpp's converter stores it: rope_factors_long / _short, attn_factor, the original context. */
    private static LlamaConfig.RopeScaling longRope(GgufFile f, int headDim, int context) {
        boolean hasLong = f.hasTensor(ROPE_LONG), hasShort = f.hasTensor(ROPE_SHORT);
        if (!hasLong && !hasShort) return null;
        if (hasLong != hasShort) throw new ModelFormatException(f.path() + ": only one of " + ROPE_LONG + " and " + ROPE_SHORT + " is present");
        float[][] fs = new float[2][];
        String[] names = {ROPE_SHORT, ROPE_LONG};
        for (int k = 0; k < 2; k++) {
            GgufFile.TensorInfo t = f.tensor(names[k]);
            if (t.type() != GgmlType.F32 || t.dims().length != 1 || t.dims()[0] != headDim / 2)
                throw new ModelFormatException(f.path() + ": tensor " + names[k] + " is " + t.type() + " " + Arrays.toString(t.dims())
                        + ", expected F32 [" + headDim / 2 + "]");
            fs[k] = new float[headDim / 2];
            GgmlCodec.dequantize(GgmlType.F32, f.data(t), 0, fs[k], 0, fs[k].length);
        }
        int orig = (int) f.longValue("phi3.rope.scaling.original_context_length", context);
        try {
            return new LlamaConfig.RopeScaling.LongRope(fs[0], fs[1], orig, f.doubleValue("phi3.rope.scaling.attn_factor", 1.0));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(f.path() + ": " + e.getMessage(), e);
        }
    }

    static final String ROPE_LONG = "rope_factors_long.weight", ROPE_SHORT = "rope_factors_short.weight";

    /** The {@code general.architecture} values read: llama, and the Qwen, Gemma and Phi-3 families that keep HF's q/k row order. */
    static final List<String> ARCHITECTURES = List.of("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3");

    /** {@link #ggufName(String, DecoderVariant)} for Llama's layout. */
    static String ggufName(String hf) { return ggufName(hf, DecoderVariant.LLAMA); }

    /**
     * llama.cpp's tensor name of an HF Llama-family tensor (q/k/v biases: attn_q.bias ...; q/k norms: attn_q_norm;
     * Gemma's norms: post_attention_layernorm → post_attention_norm, pre_ / post_feedforward_layernorm → ffn_norm / post_ffw_norm).
     */
    public static String ggufName(String hf, DecoderVariant v) {
        if (hf.equals(LlamaTensorNames.EMBED)) return "token_embd.weight";
        if (hf.equals(LlamaTensorNames.FINAL_NORM)) return "output_norm.weight";
        if (hf.equals(LlamaTensorNames.LM_HEAD)) return "output.weight";
        String rest = hf.substring("model.layers.".length());
        int dot = rest.indexOf('.');
        String layer = rest.substring(0, dot), part = rest.substring(dot + 1);
        String name = switch (part) {
            case "input_layernorm.weight" -> "attn_norm";
            case "post_attention_layernorm.weight" -> v.sandwichNorm() ? "post_attention_norm" : "ffn_norm";
            case "pre_feedforward_layernorm.weight" -> "ffn_norm";
            case "post_feedforward_layernorm.weight" -> "post_ffw_norm";
            case "self_attn.q_proj.weight" -> "attn_q";
            case "self_attn.k_proj.weight" -> "attn_k";
            case "self_attn.v_proj.weight" -> "attn_v";
            case "self_attn.o_proj.weight" -> "attn_output";
            case "mlp.gate_proj.weight" -> "ffn_gate";
            case "mlp.up_proj.weight" -> "ffn_up";
            case "mlp.down_proj.weight" -> "ffn_down";
            case "self_attn.q_proj.bias" -> "attn_q.bias";
            case "self_attn.k_proj.bias" -> "attn_k.bias";
            case "self_attn.v_proj.bias" -> "attn_v.bias";
            case "self_attn.q_norm.weight" -> "attn_q_norm";
            case "self_attn.k_norm.weight" -> "attn_k_norm";
            case "self_attn.qkv_proj.weight" -> "attn_qkv";
            case "mlp.gate_up_proj.weight" -> "ffn_up";                      // llama.cpp's phi3: ffn_up holds [gate; up]
            default -> throw new IllegalArgumentException("no GGUF name for " + hf);
        };
        return "blk." + layer + "." + name + (name.endsWith(".bias") ? "" : ".weight");
    }

    public GgufFile file() { return file; }

    @Override public LlamaConfig config() { return config; }

    @Override public Set<String> names() { return tensors.keySet(); }

    private Loc loc(String name) {
        Loc l = tensors.get(name);
        if (l == null) throw new ModelFormatException(file.path() + ": no tensor '" + name + "'");
        return l;
    }

    @Override public long[] shape(String name) {
        Loc l = loc(name);
        return l.info.dims().length == 1 ? new long[]{l.cols} : new long[]{l.rows, l.cols};
    }

    /** F16 and BF16 tensors keep their dtype; F32 and the quantized types load as fp32. */
    @Override public DType dtype(String name) {
        return switch (loc(name).info.type()) {
            case F16 -> DType.F16;
            case BF16 -> DType.BF16;
            default -> DType.F32;
        };
    }

    /** The GGUF row holding HF row {@code r}: the identity but for the q/k rows (see the class comment). */
    private int sourceRow(Loc l, int r) { return l.rope ? Rope.interleavedRow(r, config.headDim()) : r; }

    /** The tensor's location, after checking that the slice lies inside it. */
    private Loc slice(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        Loc l = loc(name);
        if (rowFrom < 0 || rowTo > l.rows || rowFrom >= rowTo || colFrom < 0 || colTo > l.cols || colFrom >= colTo)
            throw new ModelFormatException(file.path() + ": tensor '" + name + "' slice rows [" + rowFrom + ", " + rowTo + ") cols ["
                    + colFrom + ", " + colTo + ") is outside its shape " + Arrays.toString(shape(name)));
        return l;
    }

    @Override public Matrix matrix(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        Loc l = slice(name, rowFrom, rowTo, colFrom, colTo);
        int r = rowTo - rowFrom, c = colTo - colFrom;
        GgmlType type = l.info.type();
        MemorySegment data = file.data(l.info);
        long rowBytes = type.bytes(l.cols);
        DType dt = dtype(name);
        // F16, BF16 and F32 rows are read from the file, not copied from the mapping (GgufFile.read), so the heap copy
        // is the process's only resident one
        if (dt != DType.F32) {                                           // F16 / BF16: the stored bits as they are
            short[] out = new short[Math.multiplyExact(r, c)];
            byte[] row = new byte[2 * c];                                // [2c] one row slice's little-endian bits
            for (int i = 0; i < r; i++) {
                file.read(l.info, sourceRow(l, rowFrom + i) * rowBytes + 2L * colFrom, row, 0, row.length);
                java.nio.ByteBuffer.wrap(row).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(out, i * c, c);
            }
            return Matrix.ofBits(dt, r, c, out);
        }
        float[] out = new float[Math.multiplyExact(r, c)];
        if (type == GgmlType.F32) {
            byte[] row = new byte[4 * c];                                // [4c] one row slice's little-endian floats
            for (int i = 0; i < r; i++) {
                file.read(l.info, sourceRow(l, rowFrom + i) * rowBytes + 4L * colFrom, row, 0, row.length);
                java.nio.ByteBuffer.wrap(row).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out, i * c, c);
            }
            return Matrix.ofF32(r, c, out);
        }
        float[] row = c == l.cols ? null : new float[l.cols];             // [cols] a whole row, when only a slice is wanted
        for (int i = 0; i < r; i++) {
            long off = sourceRow(l, rowFrom + i) * rowBytes;
            if (row == null) GgmlCodec.dequantize(type, data, off, out, i * c, c);
            else {
                GgmlCodec.dequantize(type, data, off, row, 0, l.cols);
                System.arraycopy(row, colFrom, out, i * c, c);
            }
        }
        return Matrix.ofF32(r, c, out);
    }

    /**
     * Quantized tensors stay in their format: Q8_0 as a {@link Q8Matrix}, the other block types as a
     * {@link QuantMatrix} of the file's blocks; F16 and BF16 keep their dtype and F32 is F32 ({@link #matrix}). A
     * slice must keep whole blocks (tensor parallelism splits a row-parallel weight's columns): one that cuts them is
     * refused, naming the tensor.
     */
    @Override public Weight weight(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        Loc l = slice(name, rowFrom, rowTo, colFrom, colTo);
        GgmlType type = l.info.type();
        if (!type.quantized() || l.info.dims().length != 2) return matrix(name, rowFrom, rowTo, colFrom, colTo);
        requireColumnSlice(name, colFrom, colTo);
        int bs = type.blockSize;
        int r = rowTo - rowFrom, c = colTo - colFrom, blocks = c / bs;
        // the blocks are read from the file, not copied from the mapping (GgufFile.read): the heap copy is then the
        // process's only one
        long rowBytes = type.bytes(l.cols);
        int sliceBytes = Math.toIntExact((long) blocks * type.blockBytes);
        if (type == GgmlType.Q8_0) {
            byte[] q = new byte[Math.multiplyExact(r, c)], row = new byte[sliceBytes];
            short[] d = new short[r * blocks];
            for (int i = 0; i < r; i++) {
                file.read(l.info, sourceRow(l, rowFrom + i) * rowBytes + (long) (colFrom / bs) * type.blockBytes, row, 0, sliceBytes);
                for (int b = 0; b < blocks; b++) {                       // block_q8_0: fp16 d, then 32 int8 quants
                    int off = b * type.blockBytes;
                    d[i * blocks + b] = (short) ((row[off] & 0xFF) | (row[off + 1] << 8));
                    System.arraycopy(row, off + 2, q, i * c + b * bs, bs);
                }
            }
            return new Q8Matrix(r, c, q, d);
        }
        BlockFormat format = BlockFormat.of(type.name().toLowerCase(java.util.Locale.ROOT));
        if (format == null) return matrix(name, rowFrom, rowTo, colFrom, colTo);
        byte[] out = new byte[Math.multiplyExact(r, sliceBytes)];
        for (int i = 0; i < r; i++)
            file.read(l.info, sourceRow(l, rowFrom + i) * rowBytes + (long) (colFrom / bs) * type.blockBytes, out, i * sliceBytes, sliceBytes);
        return new QuantMatrix(format, r, c, out);
    }

    /** A quantized tensor splits between its blocks only. */
    @Override public void requireColumnSlice(String name, int colFrom, int colTo) {
        Loc l = loc(name);
        GgmlType type = l.info.type();
        int bs = type.blockSize;
        if (type.quantized() && (colFrom % bs != 0 || colTo % bs != 0))
            throw new ModelFormatException(file.path() + ": tensor '" + l.info.name() + "' (" + type + ", blocks of " + bs
                    + " weights) cannot be split at columns [" + colFrom + ", " + colTo + "): a tensor-parallel rank must hold whole blocks"
                    + " of a row-parallel weight; use a --tp that divides its " + l.cols / bs + " blocks per row");
    }

    @Override public float[] vector(String name) {
        Loc l = loc(name);
        float[] out = new float[Math.toIntExact(l.info.elements())];
        GgmlCodec.dequantize(l.info.type(), file.data(l.info), 0, out, 0, out.length);
        return out;
    }

    @Override public String describe() { return file.path().toString(); }

    @Override public void close() { file.close(); }
}
