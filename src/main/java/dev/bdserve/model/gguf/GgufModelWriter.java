package dev.bdserve.model.gguf;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.Rope;
import dev.bdserve.model.TensorSource;

import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.LongConsumer;
import java.util.stream.IntStream;

/**
 * Writes a Llama, Qwen2 or Qwen3 model as a {@code llama}, {@code qwen2} or {@code qwen3}-architecture GGUF file that
 * llama.cpp loads: its {@code <architecture>.*} metadata, tensors under llama.cpp's names (llama's q/k rows permuted to
 * llama.cpp's interleaved order, Qwen's in HF order), norms, biases and q/k norms in F32 and every
 * matrix in the requested type, or in the type a {@link GgufRecipe} chooses for it. A matrix whose rows are not a
 * whole number of the type's blocks falls back to F16, as llama-quantize does. Each matrix is read and quantized
 * (rows in parallel) straight into the file as it is written, so only one matrix's floats are in memory at a time.
 */
public final class GgufModelWriter {
    private GgufModelWriter() {}

    /** A type by its llama.cpp name (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k), refusing the others by name. */
    public static GgmlType parseType(String s) {
        for (GgmlType t : GgmlType.values())
            if (t.name().equalsIgnoreCase(s) && GgmlCodec.canQuantize(t)) return t;
        throw new IllegalArgumentException("unknown or unsupported GGUF type '" + s + "' (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                + "q4_k, q5_k, q6_k)");
    }

    /** Chooses the type of a matrix from its GGUF name and row length. */
    @FunctionalInterface
    interface TypeChoice {
        GgmlType of(String ggufName, int cols);
    }

    /**
     * @param type      the matrices' type (any {@link GgmlType})
     * @param tokenizer writes the {@code tokenizer.ggml.*} metadata (may be null: a file without a tokenizer)
     */
    public static void write(Path out, TensorSource src, GgmlType type, String name, Consumer<GgufWriter> tokenizer) {
        if (!GgmlCodec.canQuantize(type)) throw new IllegalArgumentException("cannot write " + type + " tensors");
        write(out, src, (gguf, cols) -> cols % type.blockSize == 0 ? type : GgmlType.F16, -1, name, tokenizer, n -> {});
    }

    /**
     * Writes the model with each matrix in the type {@code recipe} gives it (as llama-quantize would), recording the
     * recipe as {@code general.file_type}.
     *
     * @param progress told the number of weights of each matrix once it is quantized (norms and biases not counted)
     */
    public static void write(Path out, TensorSource src, GgufRecipe recipe, String name, Consumer<GgufWriter> tokenizer, LongConsumer progress) {
        LlamaConfig c = src.config();
        write(out, src, (gguf, cols) -> recipe.typeOf(gguf, cols, c), recipe.fileType, name, tokenizer, progress);
    }

    /** Weights in the model's matrices: the total that {@link #write(Path, TensorSource, GgufRecipe, String, Consumer, LongConsumer)} reports. */
    public static long matrixWeights(TensorSource src) {
        long n = 0;
        for (long[] s : LlamaTensorNames.expectedShapes(src.config()).values()) if (s.length == 2) n += s[0] * s[1];
        return n;
    }

    private static void write(Path out, TensorSource src, TypeChoice choice, int fileType, String name, Consumer<GgufWriter> tokenizer,
                              LongConsumer progress) {
        LlamaConfig c = src.config();
        DecoderVariant v = c.variant();
        boolean known = switch (v.family()) {
            case "llama" -> v.equals(DecoderVariant.LLAMA);
            case "qwen2" -> v.equals(DecoderVariant.qwen2(0));
            case "qwen3" -> v.equals(DecoderVariant.qwen3(0));
            case "mistral" -> v.equals(DecoderVariant.mistral(0));
            case "phi3" -> v.equals(DecoderVariant.phi3(v.slidingWindow()));
            case "gemma2" -> v.equals(DecoderVariant.gemma2(v.norm(), v.slidingWindow(), v.attnSoftcap(), v.finalSoftcap(), v.queryPreAttnScalar()))
                    && v.slidingWindow() > 0;
            case "gemma3" -> v.equals(DecoderVariant.gemma3(v.norm(), v.slidingWindow(), v.slidingPattern(), v.localRopeTheta(), v.queryPreAttnScalar()))
                    && v.attnSoftcap() == 0;
            default -> false;
        };
        if (!known)
            throw new IllegalArgumentException("GGUF writing covers the llama, qwen2, qwen3 and mistral architectures without sliding windows, and "
                    + "gemma2, gemma3 and phi3; the " + v.family() + " model's " + String.join(", ", v.departures()) + " cannot be written");
        boolean gemma = v.family().startsWith("gemma");
        if (gemma) {                                                     // what llama.cpp derives instead of reading
            float llamaCppScalar = c.numLayers() == (v.family().equals("gemma2") ? 46 : 62) ? (float) c.hiddenSize() / c.numHeads() : c.headDim();
            if (v.queryPreAttnScalar() != llamaCppScalar)
                throw new IllegalArgumentException("GGUF has no query_pre_attn_scalar: llama.cpp scales this " + v.family() + " model's scores by 1/√"
                        + llamaCppScalar + ", not 1/√" + v.queryPreAttnScalar() + "; the model cannot be written");
        }
        // llama.cpp's converter writes Mistral as the llama architecture (its MistralModel)
        String arch = v.family().equals("mistral") ? "llama" : v.family();
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", arch);
        w.putString("general.name", name);
        if (fileType >= 0) {
            w.putU32("general.file_type", fileType);
            w.putU32("general.quantization_version", 2);
        }
        w.putU32(arch + ".context_length", c.maxPositions());
        w.putU32(arch + ".embedding_length", c.hiddenSize());
        w.putU32(arch + ".block_count", c.numLayers());
        w.putU32(arch + ".feed_forward_length", c.intermediateSize());
        w.putU32(arch + ".attention.head_count", c.numHeads());
        w.putU32(arch + ".attention.head_count_kv", c.numKvHeads());
        w.putU32(arch + ".attention.key_length", c.headDim());
        w.putU32(arch + ".attention.value_length", c.headDim());
        w.putU32(arch + ".rope.dimension_count", c.headDim());
        w.putF32(arch + ".rope.freq_base", c.ropeTheta());
        w.putF32(arch + ".attention.layer_norm_rms_epsilon", c.rmsNormEps());
        w.putU32(arch + ".vocab_size", c.vocabSize());
        if (arch.equals("phi3")) {                                      // as llama.cpp's converter: the window even when 0
            w.putU32("phi3.attention.sliding_window", v.slidingWindow());
            if (c.ropeScaling() instanceof LlamaConfig.RopeScaling.LongRope lr) {
                w.putU32("phi3.rope.scaling.original_context_length", lr.originalMaxPositions());
                w.putF32("phi3.rope.scaling.attn_factor", lr.attentionFactor());
                for (String[] t : new String[][]{{GgufModelSource.ROPE_SHORT, "s"}, {GgufModelSource.ROPE_LONG, "l"}}) {
                    float[] f = t[1].equals("s") ? lr.shortFactors() : lr.longFactors();
                    byte[] b = new byte[4 * f.length];
                    GgmlCodec.quantize(GgmlType.F32, f, 0, f.length, b, 0);
                    w.addTensor(t[0], new long[]{f.length}, GgmlType.F32, b);
                }
            }
        }
        if (gemma) {
            if (v.slidingWindow() > 0) w.putU32(arch + ".attention.sliding_window", v.slidingWindow());
            if (v.slidingPattern() != (arch.equals("gemma2") ? 2 : 6)) w.putU32(arch + ".attention.sliding_window_pattern", v.slidingPattern());
            if (v.attnSoftcap() > 0) w.putF32(arch + ".attn_logit_softcapping", v.attnSoftcap());
            if (v.finalSoftcap() > 0) w.putF32(arch + ".final_logit_softcapping", v.finalSoftcap());
            if (v.localRopeTheta() > 0) w.putF32(arch + ".rope.freq_base_swa", (float) v.localRopeTheta());
        }
        if (tokenizer != null) tokenizer.accept(w);
        // the config's special ids, where the tokenizer's metadata did not name them
        if (!w.has("tokenizer.ggml.bos_token_id") && c.bosTokenId() >= 0) w.putU32("tokenizer.ggml.bos_token_id", c.bosTokenId());
        if (!w.has("tokenizer.ggml.eos_token_id") && !c.eosTokenIds().isEmpty()) w.putU32("tokenizer.ggml.eos_token_id", c.eosTokenIds().getFirst());
        if (c.ropeScaling() != null && !(c.ropeScaling() instanceof LlamaConfig.RopeScaling.LongRope)) {   // as llama.cpp's converter: the factors, F32
            float[] f = c.ropeScaling().frequencyFactors(c.headDim(), c.ropeTheta());
            byte[] b = new byte[4 * f.length];
            GgmlCodec.quantize(GgmlType.F32, f, 0, f.length, b, 0);
            w.addTensor(GgufModelSource.ROPE_FREQS, new long[]{f.length}, GgmlType.F32, b);
        }
        for (Map.Entry<String, long[]> e : LlamaTensorNames.expectedShapes(c).entrySet()) {
            String gguf = GgufModelSource.ggufName(e.getKey(), v);
            long[] shape = e.getValue();
            if (shape.length == 1) {
                float[] x = src.vector(e.getKey());                              // norms and biases stay F32
                // llama.cpp's Gemma converters store norms as 1 + w (its graphs scale by the stored weight)
                if (v.norm() == DecoderVariant.Norm.ONE_PLUS_WEIGHT && e.getKey().endsWith("norm.weight"))
                    for (int i = 0; i < x.length; i++) x[i] = 1f + x[i];
                byte[] b = new byte[4 * x.length];
                GgmlCodec.quantize(GgmlType.F32, x, 0, x.length, b, 0);
                w.addTensor(gguf, new long[]{x.length}, GgmlType.F32, b);
                continue;
            }
            int rows = (int) shape[0], cols = (int) shape[1];
            GgmlType t = choice.of(gguf, cols);
            String hf = e.getKey();
            // llama's converter permutes q/k rows into interleaved pairs; qwen2/qwen3 keep HF order (rope type NEOX)
            boolean rope = arch.equals("llama") && (gguf.endsWith("attn_q.weight") || gguf.endsWith("attn_k.weight"));
            long rowBytes = t.bytes(cols);
            w.addTensor(gguf, new long[]{cols, rows}, t, seg -> {            // read and quantized as the file is written
                float[] m = src.matrix(hf).toFloats();                           // [rows, cols] in HF order
                IntStream.range(0, rows).parallel().forEach(r -> {
                    int g = rope ? Rope.interleavedRow(r, c.headDim()) : r;
                    GgmlCodec.quantize(t, m, r * cols, cols, seg, g * rowBytes);
                });
                progress.accept((long) rows * cols);
            });
        }
        w.write(out);
    }
}
