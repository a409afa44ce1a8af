package dev.bdserve.model.gguf;

import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.GenerationResult;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraModule;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A PEFT adapter (HF row order) on a GGUF base, whose q/k rows the file holds in llama.cpp's interleaved order, gives
 * the same greedy text as on an HF safetensors base of the same weights: at TP 1 and 2, sharded replicated, S-LoRA
 * or BD-LoRA, for an adapter on all seven projections and one on q and k only. GGUF bases: bdserve's F32 file of a
 * random model next to that model's HF folder, and Q8_0, Q4_0 and Q5_1 files (weights kept quantized) next to HF
 * folders of their dequantized weights. And on a Q4_K_M base, the texts at TP 2 under each sharding equal TP 1's.
 */
class GgufAdapterTest {
    static final LlamaConfig C = new LlamaConfig(512, 128, 256, 2, 4, 2, 32, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");
    static final String PROMPT = "Once upon a time";
    static final int N = 24;

    /** Quantized bases: Q8_0 (its own weight class) and 32-weight block formats with and without an offset. */
    static final List<GgmlType> QUANTIZED = List.of(GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_1);

    @TempDir static Path dir;
    /** Per strategy: an adapter on all seven projections and one on q and k only (the rows GGUF permutes). */
    static Path dense, denseQk, bd, bdQk;

    @BeforeAll
    static void write() {
        SynthModel m = new SynthModel(C, DType.F32, 3);
        SynthTokenizer.write(dir.resolve("tok"), C.vocabSize());
        Tokenizer tok = Tokenizers.load(dir.resolve("tok").resolve("tokenizer.bin"));
        // F32: the same weights in both formats
        GgufModelWriter.write(dir.resolve("f32.gguf"), m, GgmlType.F32, "synth", w -> GgufTokenizers.writeMetadata(tok, w));
        HfModelWriter.write(dir.resolve("f32-hf"), m, DType.F32);
        SynthTokenizer.write(dir.resolve("f32-hf"), C.vocabSize());
        // quantized: the HF folder holds what the GGUF file dequantizes to
        for (GgmlType t : QUANTIZED) {
            String name = t.name().toLowerCase(java.util.Locale.ROOT);
            GgufModelWriter.write(dir.resolve(name + ".gguf"), m, t, "synth", w -> GgufTokenizers.writeMetadata(tok, w));
            try (TensorSource q = ModelFiles.open(dir.resolve(name + ".gguf"))) {
                HfModelWriter.write(dir.resolve(name + "-hf"), q, DType.F32);
            }
            SynthTokenizer.write(dir.resolve(name + "-hf"), C.vocabSize());
        }
        Set<LoraModule> qk = EnumSet.of(LoraModule.Q, LoraModule.K);
        dense = adapter("dense", 0, SynthAdapter.allModules(), 41);
        denseQk = adapter("dense-qk", 0, qk, 42);
        bd = adapter("bd", 2, SynthAdapter.allModules(), 43);
        bdQk = adapter("bd-qk", 2, qk, 44);
    }

    static Path adapter(String name, int nblocks, Set<LoraModule> targets, long seed) {
        Path p = dir.resolve(name);
        new SynthAdapter(8, nblocks, targets, DType.F32, 8, false, 0.5, seed).write(p, C, "synth");
        return p;
    }

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String base : List.of("f32", "q8_0", "q4_0", "q5_1"))
            for (int tp : new int[]{1, 2})
                for (LoraSharding s : List.of(LoraSharding.REPLICATED, LoraSharding.SLORA, LoraSharding.BDLORA)) a.add(Arguments.of(base, tp, s));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} TP {1} {2}")
    @MethodSource("cases")
    void anAdapterOnAGgufBaseWritesWhatItWritesOnTheHfBase(String base, int tp, LoraSharding sharding) {
        List<Path> adapters = sharding == LoraSharding.BDLORA ? List.of(bd, bdQk) : List.of(dense, denseQk);
        List<String> gguf = texts(dir.resolve(base + ".gguf"), tp, sharding, adapters);
        List<String> hf = texts(dir.resolve(base + "-hf"), tp, sharding, adapters);
        assertEquals(hf, gguf, "the greedy texts of the base model, the adapter and the q/k adapter on the GGUF base vs the HF base");
        assertNotEquals(gguf.get(0), gguf.get(1), "the adapter changes the text");
        assertNotEquals(gguf.get(0), gguf.get(2), "the q/k adapter changes the text");
    }

    /** The greedy texts of the base model and of each adapter; checks the sharding each adapter runs under. */
    static List<String> texts(Path model, int tp, LoraSharding sharding, List<Path> adapters) {
        Tokenizer tok = Tokenizers.load(model);
        int[] prompt = tok.encode(PROMPT, true);
        // at TP 1 every strategy computes the same; the group resolves them to replicated (dense) or packed BD-LoRA
        LoraSharding expected = tp == 1 ? (sharding == LoraSharding.BDLORA ? LoraSharding.BDLORA : LoraSharding.REPLICATED) : sharding;
        LoraSharding fallback = sharding == LoraSharding.SLORA ? LoraSharding.SLORA : LoraSharding.REPLICATED;
        TpGroup.Options o = new TpGroup.Options(tp, 1, sharding, fallback, 0).withKvCache(8L << 20, 16);
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(model), o)) {
            SamplingParams greedy = SamplingParams.greedy();
            List<GenerationRequest> reqs = new ArrayList<>(List.of(new GenerationRequest(prompt, N, greedy, -1)));
            for (Path a : adapters) {
                int id = g.addAdapter(PeftAdapterLoader.load(a.getFileName().toString(), a, g.config(), 64), sharding);
                assertEquals(expected, g.adapterSharding(id), "the strategy " + a.getFileName() + " runs under");
                reqs.add(new GenerationRequest(prompt, N, greedy, id));
            }
            List<GenerationResult> r = new Generator(g, tok, 64).generate(reqs, null);
            for (GenerationResult x : r) assertEquals(N, x.tokens().length, "generated tokens (no early </s>)");
            return r.stream().map(GenerationResult::text).toList();
        }
    }

    /**
     * Eight heads of 64 and an FFN of 1024: the row-parallel shards of TP 2 (256 and 512 columns) hold whole 256-weight
     * super-blocks, so a Q4_K_M file of it runs at TP 2.
     */
    static final LlamaConfig K = new LlamaConfig(512, 512, 1024, 2, 8, 4, 64, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");

    /**
     * Adapters on a K-quant base (Q4_K_M: Q4_K and Q6_K kept quantized, whose one-token products round activations to
     * int8, so the text is compared with the same file at TP 1 rather than with an fp32 HF folder): under each sharding
     * at TP 2, the base model's text and each adapter's equal TP 1's, and the adapters change the text.
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = LoraSharding.class, names = {"REPLICATED", "SLORA", "BDLORA"})
    void adaptersOnAKQuantBaseGiveTp1sTextAtTp2(LoraSharding sharding, @TempDir Path tmp) {
        Path file = tmp.resolve("q4_k_m.gguf");
        SynthTokenizer.write(tmp.resolve("tok"), K.vocabSize());
        Tokenizer tok = Tokenizers.load(tmp.resolve("tok").resolve("tokenizer.bin"));
        GgufModelWriter.write(file, new SynthModel(K, DType.F32, 3), GgufRecipe.parse("q4_k_m"), "synth", w -> GgufTokenizers.writeMetadata(tok, w), n -> { });
        assertEquals(EnumSet.of(GgmlType.F32, GgmlType.Q4_K, GgmlType.Q6_K), LlamaCppQuantize.tensorTypes(file), LlamaCppQuantize.describeTypes(file));
        int nblocks = sharding == LoraSharding.BDLORA ? 2 : 0;
        List<Path> adapters = new ArrayList<>();
        adapters.add(tmp.resolve("all"));
        adapters.add(tmp.resolve("qk"));
        new SynthAdapter(8, nblocks, SynthAdapter.allModules(), DType.F32, 8, false, 0.5, 45).write(adapters.get(0), K, "synth");
        new SynthAdapter(8, nblocks, EnumSet.of(LoraModule.Q, LoraModule.K), DType.F32, 8, false, 0.5, 46).write(adapters.get(1), K, "synth");
        List<String> two = texts(file, 2, sharding, adapters), one = texts(file, 1, sharding, adapters);
        assertEquals(one, two, "the greedy texts of the base model, the adapter and the q/k adapter at TP 2 vs TP 1");
        assertNotEquals(two.get(0), two.get(1), "the adapter changes the text");
        assertNotEquals(two.get(0), two.get(2), "the q/k adapter changes the text");
    }
}
