package dev.bdserve.model.gguf;

import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/** A Llama written as GGUF and read back: HF names, shapes, q/k rows, dequantized values and the same generations. */
class GgufModelSourceTest {
    /** Two layers, 4 heads of 16 over 2 KV heads, rows of 64 and 96: whole Q8_0 blocks everywhere. */
    static final LlamaConfig C = new LlamaConfig(288, 64, 96, 2, 4, 2, 16, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    @TempDir Path dir;

    Path write(GgmlType type, TensorSource src) {
        Path p = dir.resolve("m-" + type + ".gguf");
        GgufModelWriter.write(p, src, type, "test", null);
        return p;
    }

    @Test
    void f32RoundTripsExactlyInHfNamesAndLayout() {
        SynthModel src = new SynthModel(C, DType.F32, 7);
        try (GgufModelSource g = GgufModelSource.open(write(GgmlType.F32, src))) {
            assertEquals(C, g.config());
            assertEquals(src.names(), g.names());
            for (String n : src.names()) {
                assertArrayEquals(src.shape(n), g.shape(n), n);
                if (src.shape(n).length == 1) assertArrayEquals(src.vector(n), g.vector(n), n);
                else assertArrayEquals(src.matrix(n).f32(), g.matrix(n).f32(), n);
            }
            // a shard: rows and columns of q (whose rows are permuted in the file)
            String q = dev.bdserve.model.LlamaTensorNames.q(1);
            assertArrayEquals(src.matrix(q, 16, 48, 8, 40).f32(), g.matrix(q, 16, 48, 8, 40).f32());
        }
    }

    /** Quantized matrices read back as ggml's dequantisation of the quantised source rows; norms stay exact. */
    @Test
    void quantizedMatricesAreTheirDequantizedBlocks() {
        SynthModel src = new SynthModel(C, DType.F32, 8);
        for (GgmlType t : List.of(GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_1, GgmlType.F16, GgmlType.BF16)) {
            try (GgufModelSource g = GgufModelSource.open(write(t, src)); Arena arena = Arena.ofConfined()) {
                for (String n : src.names()) {
                    if (src.shape(n).length == 1) { assertArrayEquals(src.vector(n), g.vector(n), n); continue; }
                    float[] m = src.matrix(n).toFloats(), got = g.matrix(n).toFloats();
                    int cols = (int) src.shape(n)[1];
                    float[] want = new float[m.length];
                    MemorySegment row = arena.allocate(t.bytes(cols));
                    for (int r = 0; r < m.length / cols; r++) {
                        GgmlCodec.quantize(t, m, r * cols, cols, row, 0);
                        GgmlCodec.dequantize(t, row, 0, want, r * cols, cols);
                    }
                    assertArrayEquals(want, got, t + " " + n);
                }
            }
        }
    }

    /**
     * Quantized tensors load in their own format (Q8_0 as Q8Matrix, the other block types with kernels as
     * QuantMatrix) whose rows are exactly the dequantized rows; a slice cutting blocks is refused naming the tensor.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"})
    void quantizedTensorsStayQuantized(GgmlType type) {
        SynthModel src = new SynthModel(C, DType.F32, 8);
        try (GgufModelSource g = GgufModelSource.open(write(type, src))) {
            String q = dev.bdserve.model.LlamaTensorNames.q(1);                  // rows permuted in the file
            for (int[] s : new int[][]{{0, 64, 0, 64}, {16, 48, 32, 64}, {5, 9, 0, 32}}) {
                var w = g.weight(q, s[0], s[1], s[2], s[3]);
                if (type == GgmlType.Q8_0) assertInstanceOf(dev.bdserve.tensor.Q8Matrix.class, w, java.util.Arrays.toString(s));
                else if (dev.bdserve.tensor.quant.BlockFormat.of(type.name().toLowerCase()) != null)
                    assertInstanceOf(dev.bdserve.tensor.quant.QuantMatrix.class, w, java.util.Arrays.toString(s));
                float[] want = g.matrix(q, s[0], s[1], s[2], s[3]).f32(), row = new float[s[3] - s[2]];
                for (int r = 0; r < s[1] - s[0]; r++) {
                    w.row(r, row, 0);
                    assertArrayEquals(java.util.Arrays.copyOfRange(want, r * row.length, (r + 1) * row.length), row, "row " + r);
                }
            }
            var e = assertThrows(ModelFormatException.class, () -> g.weight(q, 0, 8, 8, 40));
            assertTrue(e.getMessage().contains("'blk.1.attn_q.weight'") && e.getMessage().contains("whole blocks"), e.getMessage());
        }
    }

    /**
     * A TP degree whose row-parallel shards would cut quantized blocks is refused before loading, naming the tensor
     * (FFN 96 over 2 ranks is 48 columns each, not whole blocks of 32); the same file loads at TP 1.
     */
    @Test
    void aTpDegreeThatCutsQuantizedBlocksIsRefusedNamingTheTensor() {
        Path f = write(GgmlType.Q4_0, new SynthModel(C, DType.F32, 8));
        var o = new TpGroup.Options(2, 1, LoraSharding.AUTO, LoraSharding.REPLICATED, 0).withKvCache(8L << 20, 16);
        var e = assertThrows(ModelFormatException.class, () -> TpGroup.threads(() -> ModelFiles.open(f), o).close());
        assertTrue(e.getMessage().contains("'blk.0.ffn_down.weight' (Q4_0, blocks of 32 weights) cannot be split at columns [0, 48)")
                && e.getMessage().contains("--tp"), e.getMessage());
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(f), TpGroup.Options.single(1))) {
            assertEquals(C.vocabSize(), g.config().vocabSize());
        }
    }

    /** Greedy generation on the GGUF file equals generation on the source it was written from, at TP 1 and 2. */
    @Test
    void theSameModelGeneratesTheSameTokensAtEveryTpDegree() throws Exception {
        SynthModel src = new SynthModel(C, DType.F32, 9);
        Path gguf = write(GgmlType.F32, src);
        SynthTokenizer.write(dir, C.vocabSize());
        Tokenizer tok = Tokenizers.load(dir.resolve("tokenizer.bin"));
        List<GenerationRequest> reqs = List.of(new GenerationRequest(new int[]{1, 5, 9, 13, 40}, 12, SamplingParams.greedy(), -1),
                new GenerationRequest(new int[]{1, 200, 3}, 12, SamplingParams.greedy(), -1));
        for (int tp : new int[]{1, 2}) {
            var o = new TpGroup.Options(tp, 1, LoraSharding.AUTO, LoraSharding.REPLICATED, 0).withKvCache(8L << 20, 16);
            assertEquals(tokens(() -> src, o, tok, reqs), tokens(() -> ModelFiles.open(gguf), o, tok, reqs), "TP " + tp);
        }
    }

    static List<List<Integer>> tokens(Supplier<TensorSource> s, TpGroup.Options o, Tokenizer tok, List<GenerationRequest> reqs) {
        try (TpGroup g = TpGroup.threads(s, o)) {
            return new Generator(g, tok, 64).generate(reqs, null).stream()
                    .map(r -> java.util.Arrays.stream(r.tokens()).boxed().toList()).toList();
        }
    }

    @Test
    void otherArchitecturesAndMissingTensorsAreRefusedByName() {
        GgufWriter w = new GgufWriter().putString("general.architecture", "falcon");
        Path p = dir.resolve("falcon.gguf");
        w.write(p);
        var e = assertThrows(dev.bdserve.model.ModelFormatException.class, () -> GgufModelSource.open(p));
        assertEquals(p + ": general.architecture 'falcon' is not supported (supported: llama, qwen2, qwen3, gemma2, gemma3, phi3)", e.getMessage());
        Path q = dir.resolve("qwen.gguf");
        new GgufWriter().putString("general.architecture", "qwen2").write(q);
        var e2 = assertThrows(dev.bdserve.model.ModelFormatException.class, () -> GgufModelSource.open(q));
        assertEquals(q + ": metadata key 'qwen2.embedding_length' is missing", e2.getMessage());
    }
}
