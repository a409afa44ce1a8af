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
    }

    /** The config of a named shape (case-insensitive), or throws listing the known names. */
    public static LlamaConfig get(String name) {
        LlamaConfig c = SHAPES.get(name.toLowerCase(java.util.Locale.ROOT));
        if (c == null) throw new IllegalArgumentException("unknown model shape '" + name + "'; known: " + String.join(", ", SHAPES.keySet()));
        return c;
    }

    public static java.util.Set<String> names() { return SHAPES.keySet(); }
}
