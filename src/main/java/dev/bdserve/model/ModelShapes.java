package dev.bdserve.model;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Named model shapes for synthetic models (tests and benchmarks at real sizes, random weights). */
public final class ModelShapes {
    private ModelShapes() {}

    private static final Map<String, LlamaConfig> SHAPES = new TreeMap<>();

    static {
        // meta-llama/Llama-3.2-1B: 16 layers, d 2048, 32 heads, 8 KV heads, d_ff 8192, vocab 128256, tied, llama3 RoPE
        SHAPES.put("llama-3.2-1b", new LlamaConfig(128256, 2048, 8192, 16, 32, 8, 64, 131072, 1e-5f, 500000,
                new LlamaConfig.RopeScaling.Llama3(32, 1, 4, 8192), true, 128000, List.of(128001), "bfloat16"));
        // meta-llama/Llama-3.1-8B: 32 layers, d 4096, 32 heads, 8 KV heads, d_ff 14336, vocab 128256, untied
        SHAPES.put("llama-3.1-8b", new LlamaConfig(128256, 4096, 14336, 32, 32, 8, 128, 131072, 1e-5f, 500000,
                new LlamaConfig.RopeScaling.Llama3(8, 1, 4, 8192), false, 128000, List.of(128001), "bfloat16"));
        // JackFram/llama-160m: 12 layers, d 768, 12 heads (MHA), d_ff 3072, vocab 32000, untied
        SHAPES.put("llama-160m", new LlamaConfig(32000, 768, 3072, 12, 12, 12, 64, 2048, 1e-6f, 10000,
                null, false, 1, List.of(2), "float32"));
        // stories260K's shape (dim 64, hidden 172, 5 layers, 8 heads, 4 KV heads, vocab 512, tied)
        SHAPES.put("stories260k", new LlamaConfig(512, 64, 172, 5, 8, 4, 8, 512, 1e-5f, 10000,
                null, true, 1, List.of(2), "float32"));
        // Tiny test shapes: GQA, odd widths that exercise kernel tails, untied head, llama3 RoPE
        SHAPES.put("tiny", new LlamaConfig(256, 64, 96, 2, 4, 2, 16, 256, 1e-5f, 10000,
                null, false, 1, List.of(2), "float32"));
        SHAPES.put("tiny-gqa", new LlamaConfig(300, 72, 200, 3, 6, 2, 12, 512, 1e-6f, 500000,
                new LlamaConfig.RopeScaling.Llama3(8, 1, 4, 64), true, 1, List.of(2), "bfloat16"));
        // Qwen/Qwen2.5-0.5B: 24 layers, d 896, 14 heads, 2 KV heads, d_ff 4864, q/k/v biases, tied, vocab 151936 (padded)
        SHAPES.put("qwen2.5-0.5b", new LlamaConfig(151936, 896, 4864, 24, 14, 2, 64, 32768, 1e-6f, 1000000,
                null, true, 151643, List.of(151645), "bfloat16", DecoderVariant.qwen2(0)));
        // Qwen/Qwen3-0.6B: 28 layers, d 1024, 16 heads of 128 (q_proj [2048, 1024]), 8 KV heads, d_ff 3072, q/k norms, tied
        SHAPES.put("qwen3-0.6b", new LlamaConfig(151936, 1024, 3072, 28, 16, 8, 128, 40960, 1e-6f, 1000000,
                null, true, 151643, List.of(151645), "bfloat16", DecoderVariant.qwen3(0)));
        // mistralai/Mistral-7B-v0.1: 32 layers, d 4096, 32 heads, 8 KV heads, d_ff 14336, sliding window 4096, untied
        SHAPES.put("mistral-7b-v0.1", new LlamaConfig(32000, 4096, 14336, 32, 32, 8, 128, 32768, 1e-5f, 10000,
                null, false, 1, List.of(2), "bfloat16", DecoderVariant.mistral(4096)));
        // Tiny shapes of the other families (tests, `synth model` → generate / serve end to end)
        SHAPES.put("tiny-qwen2", new LlamaConfig(256, 64, 96, 2, 4, 2, 16, 256, 1e-6f, 1000000,
                null, true, 1, List.of(2), "float32", DecoderVariant.qwen2(0)));
        SHAPES.put("tiny-qwen3", new LlamaConfig(256, 48, 96, 2, 4, 2, 24, 256, 1e-6f, 1000000,
                null, false, 1, List.of(2), "float32", DecoderVariant.qwen3(0)));
        SHAPES.put("tiny-mistral", new LlamaConfig(256, 64, 96, 2, 4, 2, 16, 256, 1e-5f, 10000,
                null, false, 1, List.of(2), "float32", DecoderVariant.mistral(8)));
        // google/gemma-2-2b: 26 layers, d 2304, 8 heads of 256, 4 KV heads, d_ff 9216, window 4096 on even layers,
        // soft-caps 50 / 30, query_pre_attn_scalar 256, tied, vocab 256000
        SHAPES.put("gemma-2-2b", new LlamaConfig(256000, 2304, 9216, 26, 8, 4, 256, 8192, 1e-6f, 10000,
                null, true, 2, List.of(1, 107), "bfloat16", DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 4096, 50, 30, 256)));
        // google/gemma-3-1b-pt: 26 layers, d 1152, 4 heads of 256, 1 KV head, d_ff 6912, window 512 on 5 of 6 layers
        // (local RoPE base 10000, global 1e6), q/k norms, tied, vocab 262144
        SHAPES.put("gemma-3-1b", new LlamaConfig(262144, 1152, 6912, 26, 4, 1, 256, 32768, 1e-6f, 1000000,
                null, true, 2, List.of(1, 106), "bfloat16", DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 512, 6, 10000, 256)));
        // microsoft/Phi-3-mini-4k-instruct: 32 layers, d 3072, 32 heads of 96, d_ff 8192, fused qkv_proj / gate_up_proj,
        // sliding window 2047, vocab 32064, untied
        SHAPES.put("phi-3-mini", new LlamaConfig(32064, 3072, 8192, 32, 32, 32, 96, 4096, 1e-5f, 10000,
                null, false, 1, List.of(32000, 32007), "bfloat16", DecoderVariant.phi3(2047)));
        // a tiny Phi-3 with LongRoPE (original context 128, extended to 256) and a window of 8
        SHAPES.put("tiny-phi3", new LlamaConfig(256, 64, 96, 2, 4, 2, 16, 256, 1e-5f, 10000,
                new LlamaConfig.RopeScaling.LongRope(new float[]{1, 1.1f, 1.3f, 1.6f, 2, 2.5f, 3, 4}, new float[]{1, 1.5f, 2.5f, 4, 6, 9, 12, 16}, 128,
                        LlamaConfig.RopeScaling.LongRope.defaultAttentionFactor(256, 128)),
                false, 1, List.of(2), "float32", DecoderVariant.phi3(8)));
        SHAPES.put("tiny-gemma2", new LlamaConfig(256, 64, 96, 3, 4, 2, 16, 256, 1e-6f, 10000,
                null, true, 2, List.of(1), "float32", DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 8, 50, 30, 16)));
        SHAPES.put("tiny-gemma3", new LlamaConfig(256, 64, 96, 7, 4, 1, 32, 256, 1e-6f, 1000000,
                null, true, 2, List.of(1), "float32", DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 8, 6, 10000, 32)));
    }

    /** The config of a named shape (case-insensitive), or throws listing the known names. */
    public static LlamaConfig get(String name) {
        LlamaConfig c = SHAPES.get(name.toLowerCase(java.util.Locale.ROOT));
        if (c == null) throw new IllegalArgumentException("unknown model shape '" + name + "'; known: " + String.join(", ", SHAPES.keySet()));
        return c;
    }

    public static java.util.Set<String> names() { return SHAPES.keySet(); }

    /** The families {@link #get(String, String)} can give a shape. */
    public static final List<String> FAMILIES = List.of("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3");

    /**
     * A named shape as a model of {@code family} (null: the shape's own). A Llama shape takes another family's
     * departures (q/k/v biases, q/k norms, Mistral's decoder with full attention, Gemma 2's and Gemma 3's with their real
     * windows) at the same sizes; a shape of
     * another family is only itself.
     */
    public static LlamaConfig get(String name, String family) {
        LlamaConfig c = get(name);
        String own = c.variant().family();
        if (family == null || family.equals(own)) return c;
        if (!FAMILIES.contains(family))
            throw new IllegalArgumentException("unknown architecture '" + family + "'; known: " + String.join(", ", FAMILIES));
        if (!own.equals("llama"))
            throw new IllegalArgumentException("shape '" + name + "' is a " + own + " model; --arch " + family + " takes a llama shape ("
                    + String.join(", ", SHAPES.entrySet().stream().filter(e -> e.getValue().variant().family().equals("llama")).map(Map.Entry::getKey).toList())
                    + ") or one of its own family");
        return c.withVariant(switch (family) {
            case "qwen2" -> DecoderVariant.qwen2(0);
            case "qwen3" -> DecoderVariant.qwen3(0);
            case "mistral" -> DecoderVariant.mistral(0);
            case "gemma2" -> DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 4096, 50, 30, c.headDim());
            case "gemma3" -> DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 512, 6, 10000, c.headDim());
            case "phi3" -> DecoderVariant.phi3(0);
            default -> DecoderVariant.LLAMA;
        });
    }
}
