package dev.bdserve.model.gguf;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.Rope;
import dev.bdserve.model.TensorSource;

import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Writes a Llama model as a {@code llama}-architecture GGUF file that llama.cpp loads: its {@code llama.*} metadata,
 * tensors under llama.cpp's names with q/k rows permuted to llama.cpp's interleaved order, norms in F32 and every
 * matrix in the requested type. A matrix whose rows are not a whole number of the type's blocks falls back to F16, as
 * llama-quantize does.
 */
public final class GgufModelWriter {
    private GgufModelWriter() {}

    /** A type by its llama.cpp name (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1), refusing the others by name. */
    public static GgmlType parseType(String s) {
        for (GgmlType t : GgmlType.values())
            if (t.name().equalsIgnoreCase(s) && GgmlCodec.canQuantize(t)) return t;
        throw new IllegalArgumentException("unknown or unsupported GGUF type '" + s + "' (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1)");
    }

    /**
     * @param type      the matrices' type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1
     * @param tokenizer writes the {@code tokenizer.ggml.*} metadata (may be null: a file without a tokenizer)
     */
    public static void write(Path out, TensorSource src, GgmlType type, String name, Consumer<GgufWriter> tokenizer) {
        if (!GgmlCodec.canQuantize(type)) throw new IllegalArgumentException("cannot write " + type + " tensors (supported: "
                + "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)");
        LlamaConfig c = src.config();
        if (!c.variant().departures().isEmpty())
            throw new IllegalArgumentException("GGUF writing covers the llama architecture only; the " + c.variant().family()
                    + " model's " + String.join(", ", c.variant().departures()) + " cannot be written");
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", "llama");
        w.putString("general.name", name);
        w.putU32("llama.context_length", c.maxPositions());
        w.putU32("llama.embedding_length", c.hiddenSize());
        w.putU32("llama.block_count", c.numLayers());
        w.putU32("llama.feed_forward_length", c.intermediateSize());
        w.putU32("llama.attention.head_count", c.numHeads());
        w.putU32("llama.attention.head_count_kv", c.numKvHeads());
        w.putU32("llama.attention.key_length", c.headDim());
        w.putU32("llama.attention.value_length", c.headDim());
        w.putU32("llama.rope.dimension_count", c.headDim());
        w.putF32("llama.rope.freq_base", c.ropeTheta());
        w.putF32("llama.attention.layer_norm_rms_epsilon", c.rmsNormEps());
        w.putU32("llama.vocab_size", c.vocabSize());
        if (tokenizer != null) tokenizer.accept(w);
        // the config's special ids, where the tokenizer's metadata did not name them
        if (!w.has("tokenizer.ggml.bos_token_id") && c.bosTokenId() >= 0) w.putU32("tokenizer.ggml.bos_token_id", c.bosTokenId());
        if (!w.has("tokenizer.ggml.eos_token_id") && !c.eosTokenIds().isEmpty()) w.putU32("tokenizer.ggml.eos_token_id", c.eosTokenIds().getFirst());
        if (c.ropeScaling() != null) {                                           // as llama.cpp's converter: the factors, F32
            float[] f = c.ropeScaling().frequencyFactors(c.headDim(), c.ropeTheta());
            byte[] b = new byte[4 * f.length];
            GgmlCodec.quantize(GgmlType.F32, f, 0, f.length, b, 0);
            w.addTensor(GgufModelSource.ROPE_FREQS, new long[]{f.length}, GgmlType.F32, b);
        }
        for (Map.Entry<String, long[]> e : LlamaTensorNames.expectedShapes(c).entrySet()) {
            String gguf = GgufModelSource.ggufName(e.getKey());
            long[] shape = e.getValue();
            if (shape.length == 1) {
                float[] v = src.vector(e.getKey());                              // norms stay F32
                byte[] b = new byte[4 * v.length];
                GgmlCodec.quantize(GgmlType.F32, v, 0, v.length, b, 0);
                w.addTensor(gguf, new long[]{v.length}, GgmlType.F32, b);
                continue;
            }
            int rows = (int) shape[0], cols = (int) shape[1];
            GgmlType t = cols % type.blockSize == 0 ? type : GgmlType.F16;
            float[] m = src.matrix(e.getKey()).toFloats();                      // [rows, cols] in HF order
            boolean rope = gguf.endsWith("attn_q.weight") || gguf.endsWith("attn_k.weight");
            int rowBytes = (int) t.bytes(cols);
            byte[] b = new byte[Math.multiplyExact(rows, rowBytes)];
            for (int r = 0; r < rows; r++) {
                int g = rope ? Rope.interleavedRow(r, c.headDim()) : r;
                GgmlCodec.quantize(t, m, r * cols, cols, b, g * rowBytes);
            }
            w.addTensor(gguf, new long[]{cols, rows}, t, b);
        }
        w.write(out);
    }
}
