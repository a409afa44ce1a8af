package dev.bdserve.model.gguf;

import dev.bdserve.model.LlamaConfig;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * A quantization recipe as llama-quantize names it ({@code q8_0}, {@code q4_0}, {@code q4_k_m}, {@code q5_k_m}): a
 * default type for the model's matrices and the per-tensor choices llama.cpp's {@code llama_tensor_get_type} makes
 * for a dense model without an importance matrix, so that a file bdserve writes has llama.cpp's type for every
 * tensor. Those choices:
 * <ul>
 *   <li>the output matrix ({@code output.weight}, or {@code token_embd.weight} when the embeddings are tied) is Q6_K
 *       unless the default is Q8_0, and Q8_0 when its rows are not whole blocks of the default type;</li>
 *   <li>in the K_M recipes, {@code attn_v} (or a fused {@code attn_qkv}, which llama.cpp counts as one) and
 *       {@code ffn_down} take Q6_K in the "more bits" layers (the first and last eighth and every third in between);</li>
 *   <li>a row length that is not a multiple of the chosen type's block falls back: Q4_K to Q5_0, Q5_K to Q5_1,
 *       Q6_K to Q8_0, and to F16 when it is not a multiple of 32 either.</li>
 * </ul>
 * A model llama.cpp takes for a 70B one ({@link #is70B}) gets Q5_K rather than Q4_K in its other attn_v layers.
 * Vectors (norms, biases, RoPE factors) are not the recipe's business: writers keep them F32. Not modelled, as
 * bdserve's dense architectures never meet them: llama.cpp's mixture-of-experts and Falcon rules.
 */
public enum GgufRecipe {
    Q8_0(GgmlType.Q8_0, 7), Q4_0(GgmlType.Q4_0, 2), Q4_K_M(GgmlType.Q4_K, 15), Q5_K_M(GgmlType.Q5_K, 17);

    /** The type of the matrices no rule singles out. */
    public final GgmlType base;
    /** llama.cpp's {@code enum llama_ftype} value of the recipe, stored as {@code general.file_type}. */
    public final int fileType;

    GgufRecipe(GgmlType base, int fileType) {
        this.base = base;
        this.fileType = fileType;
    }

    /** The recipe's llama-quantize name: q8_0, q4_k_m, ... */
    public String label() { return name().toLowerCase(Locale.ROOT); }

    /** A recipe by its llama-quantize name (any case), refusing others with the list of known ones. */
    public static GgufRecipe parse(String s) {
        for (GgufRecipe r : values()) if (r.label().equalsIgnoreCase(s.strip())) return r;
        throw new IllegalArgumentException("unknown quantization type '" + s + "' (known: "
                + Arrays.stream(values()).map(GgufRecipe::label).collect(Collectors.joining(", ")) + ")");
    }

    /** llama.cpp's {@code use_more_bits}: the first and last eighth of the layers, and every third one between. */
    static boolean useMoreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }

    /**
     * Whether llama.cpp takes the model for a 70B one (its {@code LLM_TYPE_70B}, which gets more bits in attn_v):
     * 80 layers of the llama architecture (Mistral included, as llama.cpp's converter writes it) with grouped
     * key/value heads, or of qwen2.
     */
    static boolean is70B(LlamaConfig c) {
        String family = c.variant().family();
        return c.numLayers() == 80 && (family.equals("qwen2")
                || (family.equals("llama") || family.equals("mistral")) && c.numHeads() != c.numKvHeads());
    }

    /**
     * The type of the 2-D tensor named {@code ggufName} (llama.cpp's name, e.g. {@code blk.3.attn_v.weight}) whose
     * rows hold {@code cols} weights, in the model of config {@code c} (its layers, tied embeddings, and whether
     * llama.cpp takes it for a 70B model).
     */
    public GgmlType typeOf(String ggufName, long cols, LlamaConfig c) {
        return typeOf(ggufName, cols, c.numLayers(), c.tieWordEmbeddings(), is70B(c));
    }

    /**
     * {@link #typeOf(String, long, LlamaConfig)} for a model of {@code layers} layers whose embeddings are
     * {@code tied} to the output (the file has no {@code output.weight}), {@code seventyB} as {@link #is70B}.
     */
    GgmlType typeOf(String ggufName, long cols, int layers, boolean tied, boolean seventyB) {
        GgmlType t = base;
        String role = ggufName.startsWith("blk.") ? ggufName.substring(ggufName.indexOf('.', 4) + 1) : ggufName;
        int layer = ggufName.startsWith("blk.") ? Integer.parseInt(ggufName.substring(4, ggufName.indexOf('.', 4))) : -1;
        boolean kM = this == Q4_K_M || this == Q5_K_M;
        if (ggufName.equals("output.weight") || tied && ggufName.equals("token_embd.weight")) {
            if (cols % base.blockSize != 0) t = GgmlType.Q8_0;
            else if (base != GgmlType.Q8_0) t = GgmlType.Q6_K;
        } else if (kM && (role.equals("attn_v.weight") || role.equals("attn_qkv.weight"))) {
            if (useMoreBits(layer, layers)) t = GgmlType.Q6_K;           // llama.cpp counts a fused attn_qkv as an attn_v
            else if (seventyB && t == GgmlType.Q4_K) t = GgmlType.Q5_K;  // its 8 heads share each attn_v row: cheap bits
        } else if (kM && role.equals("ffn_down.weight") && useMoreBits(layer, layers)) {
            t = GgmlType.Q6_K;
        }
        if (cols % t.blockSize != 0) {
            t = switch (t) {
                case Q4_K -> GgmlType.Q5_0;
                case Q5_K -> GgmlType.Q5_1;
                case Q6_K -> GgmlType.Q8_0;
                default -> t;
            };
            if (cols % t.blockSize != 0) t = GgmlType.F16;
        }
        return t;
    }
}
