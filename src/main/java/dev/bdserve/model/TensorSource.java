package dev.bdserve.model;

import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Weight;

import java.util.Set;

/**
 * The tensors of a checkpoint, addressed by their Hugging Face names
 * ({@code model.embed_tokens.weight}, {@code model.layers.0.self_attn.q_proj.weight}, ...) and in HF
 * layout (q/k rows ordered for rotate-half RoPE, weights [out_features, in_features]).
 * Implementations: a safetensors folder, or a llama2.c checkpoint (permuted at load).
 */
public interface TensorSource extends AutoCloseable {
    /** The model's hyper-parameters. */
    LlamaConfig config();

    /** Names of all tensors present. */
    Set<String> names();

    /** Shape of a tensor, or throws {@link ModelFormatException} naming the file and tensor. */
    long[] shape(String name);

    /**
     * A 2-D tensor, rows [rowFrom, rowTo) and columns [colFrom, colTo) (a tensor-parallel shard),
     * copied into heap storage in the tensor's own dtype (F32/BF16/F16).
     */
    Matrix matrix(String name, int rowFrom, int rowTo, int colFrom, int colTo);

    /** A whole 2-D tensor. */
    default Matrix matrix(String name) {
        long[] s = shape(name);
        if (s.length != 2) throw new ModelFormatException(describe() + ": tensor " + name + " has rank " + s.length + ", expected 2");
        return matrix(name, 0, (int) s[0], 0, (int) s[1]);
    }

    /**
     * A 2-D tensor's slice as the forward pass multiplies with it: by default the dense {@link #matrix}; a source whose
     * tensors are quantized returns them still quantized where a kernel for their format exists.
     */
    default Weight weight(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        return matrix(name, rowFrom, rowTo, colFrom, colTo);
    }

    /**
     * Throws {@link ModelFormatException} naming the tensor when its columns [colFrom, colTo) cannot be a
     * {@link #weight} of their own: a quantized tensor's slice must hold whole blocks. Checked for every row-parallel
     * shard before a rank loads anything. Dense sources split anywhere.
     */
    default void requireColumnSlice(String name, int colFrom, int colTo) {}

    /** A whole 2-D tensor as a {@link #weight}. */
    default Weight weight(String name) {
        long[] s = shape(name);
        if (s.length != 2) throw new ModelFormatException(describe() + ": tensor " + name + " has rank " + s.length + ", expected 2");
        return weight(name, 0, (int) s[0], 0, (int) s[1]);
    }

    /** The stored dtype of a tensor (the default reads it; sources that know it cheaply override). */
    default dev.bdserve.tensor.DType dtype(String name) {
        long[] s = shape(name);
        return matrix(name, 0, 1, 0, (int) s[s.length - 1]).dtype();
    }

    /** A 1-D tensor (e.g. a norm weight) widened to fp32. */
    float[] vector(String name);

    /** A human-readable description of the source (the file or folder) for error messages. */
    String describe();

    @Override void close();
}
