package dev.bdserve.model.io;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A llama2.c ("Karpathy") fp32 checkpoint such as stories260K.bin, exposed with Hugging Face names and
 * layout.
 *
 * <p>File layout: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means an unshared classifier is appended), then fp32 arrays:
 * token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
 * wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim] (gate),
 * w2 [L, dim, hidden] (down), w3 [L, hidden, dim] (up), rms_final [dim],
 * freq_cis_real [seq_len, head_size/2], freq_cis_imag [seq_len, head_size/2] (unused), and
 * wcls [vocab, dim] when unshared. Weights are [out, in] as in HF.
 *
 * <p>RoPE layout: llama2.c (like Meta's checkpoints) rotates interleaved pairs (2i, 2i+1) of each head;
 * HF rotates halves (i, i + head_dim/2). q_proj and k_proj rows are therefore permuted at load, per
 * head: new row j = old row 2j and new row head_dim/2 + j = old row 2j + 1, for j < head_dim/2. This
 * is exactly the {@code permute(w, n_heads, dim1, dim2) = w.view(n_heads, dim1 // n_heads // 2, 2,
 * dim2).transpose(1, 2).reshape(dim1, dim2)} that HF's convert_llama_weights_to_hf.py applies to
 * Meta weights, i.e. the inverse of llama2.c export.py's {@code permute_reverse} (HF → llama2.c). Since
 * the same permutation is applied to q and k, attention scores are unchanged.
 */
public final class Llama2cCheckpoint implements TensorSource {
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long HEADER_BYTES = 7 * 4;

    /** Where a tensor lives: byte offset of layer 0, per-layer stride, shape, whether rows are RoPE-permuted. */
    private record Loc(long offset, int rows, int cols, boolean rope) {}

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final LlamaConfig config;
    private final Map<String, Loc> tensors;

    private Llama2cCheckpoint(Path path, Arena arena, MemorySegment file, LlamaConfig config, Map<String, Loc> tensors) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.config = config;
        this.tensors = tensors;
    }

    /** Opens a checkpoint, checking the header and that the file length matches it exactly. */
    public static Llama2cCheckpoint open(Path path) {
        String f = path.toString();
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg = MappedFile.map(path, arena, HEADER_BYTES, "the 28-byte llama2.c header");
            int dim = seg.get(I32_LE, 0), hidden = seg.get(I32_LE, 4), layers = seg.get(I32_LE, 8),
                    heads = seg.get(I32_LE, 12), kvHeads = seg.get(I32_LE, 16), vocabRaw = seg.get(I32_LE, 20),
                    seqLen = seg.get(I32_LE, 24);
            String hdr = "dim=" + dim + " hidden_dim=" + hidden + " n_layers=" + layers + " n_heads=" + heads
                    + " n_kv_heads=" + kvHeads + " vocab_size=" + vocabRaw + " seq_len=" + seqLen;
            if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocabRaw == 0
                    || vocabRaw == Integer.MIN_VALUE || seqLen <= 0)
                throw new ModelFormatException(f + ": invalid llama2.c header (" + hdr + "): sizes must be positive");
            if (dim % heads != 0 || (dim / heads) % 2 != 0)
                throw new ModelFormatException(f + ": invalid llama2.c header (" + hdr + "): dim must be n_heads × an even head size");
            if (heads % kvHeads != 0)
                throw new ModelFormatException(f + ": invalid llama2.c header (" + hdr + "): n_kv_heads must divide n_heads");
            boolean shared = vocabRaw > 0;
            int vocab = Math.abs(vocabRaw);
            int headSize = dim / heads;
            int kvDim = kvHeads * headSize;

            Map<String, Loc> t = new LinkedHashMap<>();
            long[] pos = {HEADER_BYTES};
            // each layer-stacked array is laid out [layers, rows, cols]; record layer i's slice
            java.util.function.BiConsumer<String, int[]> stacked = (suffix, rc) -> {
                long per = (long) rc[0] * rc[1] * 4;
                for (int i = 0; i < layers; i++)
                    t.put(LlamaTensorNames.layer(i, suffix), new Loc(pos[0] + i * per, rc[0], rc[1], rc.length > 2));
                pos[0] += per * layers;
            };
            t.put(LlamaTensorNames.EMBED, new Loc(pos[0], vocab, dim, false));
            pos[0] += (long) vocab * dim * 4;
            stacked.accept("input_layernorm.weight", new int[]{1, dim});
            stacked.accept("self_attn.q_proj.weight", new int[]{dim, dim, 1});
            stacked.accept("self_attn.k_proj.weight", new int[]{kvDim, dim, 1});
            stacked.accept("self_attn.v_proj.weight", new int[]{kvDim, dim});
            stacked.accept("self_attn.o_proj.weight", new int[]{dim, dim});
            stacked.accept("post_attention_layernorm.weight", new int[]{1, dim});
            stacked.accept("mlp.gate_proj.weight", new int[]{hidden, dim});
            stacked.accept("mlp.down_proj.weight", new int[]{dim, hidden});
            stacked.accept("mlp.up_proj.weight", new int[]{hidden, dim});
            t.put(LlamaTensorNames.FINAL_NORM, new Loc(pos[0], 1, dim, false));
            pos[0] += (long) dim * 4;
            pos[0] += 2L * seqLen * (headSize / 2) * 4; // freq_cis_real, freq_cis_imag: skipped
            if (!shared) {
                t.put(LlamaTensorNames.LM_HEAD, new Loc(pos[0], vocab, dim, false));
                pos[0] += (long) vocab * dim * 4;
            }
            long expected = pos[0];
            if (seg.byteSize() != expected)
                throw new ModelFormatException(f + ": file is " + seg.byteSize() + " bytes but the llama2.c header (" + hdr
                        + ") implies " + expected + " bytes" + (seg.byteSize() < expected ? " (truncated?)" : " (trailing data?)"));

            LlamaConfig cfg;
            try {
                cfg = new LlamaConfig(vocab, dim, hidden, layers, heads, kvHeads, headSize, seqLen, 1e-5f, 10000.0,
                        null, shared, 1, List.of(2), "float32");
            } catch (IllegalArgumentException e) {
                throw new ModelFormatException(f + ": " + e.getMessage(), e);
            }
            // present names in HF order
            Map<String, Loc> ordered = new LinkedHashMap<>();
            for (String n : LlamaTensorNames.expectedShapes(cfg).keySet()) ordered.put(n, t.get(n));
            return new Llama2cCheckpoint(path, arena, seg, cfg, Collections.unmodifiableMap(ordered));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() { return path; }

    @Override public LlamaConfig config() { return config; }

    @Override public Set<String> names() { return tensors.keySet(); }

    private Loc loc(String name) {
        Loc l = tensors.get(name);
        if (l == null) throw new ModelFormatException(path + ": no tensor '" + name + "'");
        return l;
    }

    @Override public long[] shape(String name) {
        Loc l = loc(name);
        return l.rows == 1 && isVector(name) ? new long[]{l.cols} : new long[]{l.rows, l.cols};
    }

    private static boolean isVector(String name) { return name.endsWith("layernorm.weight") || name.equals(LlamaTensorNames.FINAL_NORM); }

    /** The llama2.c row holding HF row {@code r} (identity except for q/k, see the class comment). */
    int sourceRow(Loc l, int r) {
        return l.rope ? dev.bdserve.model.Rope.interleavedRow(r, config.headDim()) : r;
    }

    @Override public DType dtype(String name) { shape(name); return DType.F32; }

    @Override public Matrix matrix(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        Loc l = loc(name);
        if (rowFrom < 0 || rowTo > l.rows || rowFrom >= rowTo || colFrom < 0 || colTo > l.cols || colFrom >= colTo)
            throw new ModelFormatException(path + ": tensor '" + name + "' slice rows [" + rowFrom + ", " + rowTo + ") cols ["
                    + colFrom + ", " + colTo + ") is outside its shape " + Arrays.toString(shape(name)));
        int r = rowTo - rowFrom, c = colTo - colFrom;
        float[] out = new float[Math.multiplyExact(r, c)];
        if (!l.rope && c == l.cols) {
            MemorySegment.copy(file, Safetensors.F32_LE, l.offset + (long) rowFrom * l.cols * 4, out, 0, out.length);
        } else {
            for (int i = 0; i < r; i++) {
                long src = l.offset + ((long) sourceRow(l, rowFrom + i) * l.cols + colFrom) * 4;
                MemorySegment.copy(file, Safetensors.F32_LE, src, out, i * c, c);
            }
        }
        return Matrix.ofF32(r, c, out);
    }

    @Override public float[] vector(String name) {
        Loc l = loc(name);
        float[] out = new float[Math.multiplyExact(l.rows, l.cols)];
        if (l.rope) return matrix(name).f32();
        MemorySegment.copy(file, Safetensors.F32_LE, l.offset, out, 0, out.length);
        return out;
    }

    @Override public String describe() { return path.toString(); }

    @Override public void close() { if (arena.scope().isAlive()) arena.close(); }
}
