package dev.bdserve.model.gguf;

import dev.bdserve.lora.GgufLoraAdapters;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.gguf.LlamaCppLogits.Step;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.SynthTokenizer;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * One adapter on both engines: a PEFT adapter written by bdserve as a GGUF LoRA gives, in llama.cpp (its
 * llama_adapter_lora path over its own graph), the logits bdserve gives with the PEFT folder, and bdserve reading the
 * GGUF LoRA gives the PEFT folder's logits. Llama (q/k B rows permuted), Qwen2 and Phi-3 (fused qkv / gate_up)
 * bases; a dense adapter with alpha ≠ r, and a BD-LoRA one with rsLoRA (written dense).
 */
class GgufLoraTest {
    static final int STEPS = 24;
    @TempDir Path dir;

    static LlamaConfig config(String arch) {
        return arch.equals("llama") ? GgufLlamaCppParityTest.C : GgufFamiliesTest.config(arch);
    }

    Path base(String arch) {
        LlamaConfig c = config(arch);
        Path sub = dir.resolve(arch);
        SynthTokenizer.write(sub, c.vocabSize());
        Tokenizer tok = Tokenizers.load(sub.resolve("tokenizer.bin"));
        Path f = sub.resolve("base.gguf");
        GgufModelWriter.write(f, new SynthModel(c, DType.F32, 3), GgmlType.F32, "synth-model", w -> GgufTokenizers.writeMetadata(tok, w));
        return f;
    }

    @ParameterizedTest(name = "{0} nblocks={1} rslora={2}")
    @CsvSource({"llama, 0, false", "llama, 2, true", "qwen2, 0, false", "phi3, 0, false", "phi3, 2, false"})
    void llamaCppWithTheGgufLoraGivesBdservesLogitsWithThePeftFolder(String arch, int nblocks, boolean rslora) {
        LlamaConfig c = config(arch);
        Path base = base(arch), peft = dir.resolve(arch + "-peft"), gguf = dir.resolve(arch + "-lora.gguf");
        new SynthAdapter(8, nblocks, SynthAdapter.allModules(), DType.F32, 12, rslora, 0.5, 5).write(peft, c, "synth");
        LoraAdapter a = PeftAdapterLoader.load("a", peft, c, 64);
        GgufLoraAdapters.write(a, c, gguf);

        int[] prompt = GgufLlamaCppParityTest.prompt(8, 9);
        int context = arch.equals("llama") ? 256 : GgufFamiliesTest.context(arch);     // Phi-3: its LongRoPE factors as bdserve picks them
        List<Step> llama = LlamaCppLogits.llamaCpp(context, gguf, c.vocabSize(), prompt, STEPS, base).getFirst();
        float[][] withPeft = LlamaCppLogits.bdserve(base, peft, prompt, llama);
        float[][] withGguf = LlamaCppLogits.bdserve(base, gguf, prompt, llama);
        float[][] without = LlamaCppLogits.bdserve(base, null, prompt, llama);
        int clear = 0;
        double effect = 0;
        for (int s = 0; s < STEPS; s++) {
            Step st = llama.get(s);
            double range = st.range();
            double vsLlama = LlamaCppLogits.maxAbsDiff(st.logits(), withPeft[s]) / range;
            double ggufVsPeft = LlamaCppLogits.maxAbsDiff(withGguf[s], withPeft[s]) / range;
            effect = Math.max(effect, LlamaCppLogits.maxAbsDiff(without[s], withPeft[s]) / range);
            String at = String.format("%s step %d (top-1 margin %.3f): ", arch, s, st.margin());
            System.out.printf("%s|Δ|/range vs llama.cpp %.2e, GGUF LoRA vs PEFT %.2e%n", at, vsLlama, ggufVsPeft);
            assertTrue(vsLlama < 1e-3, at + "bdserve with the PEFT folder differs from llama.cpp with the GGUF LoRA by " + vsLlama + " of the range");
            assertTrue(ggufVsPeft < 1e-5, at + "bdserve with the GGUF LoRA differs from the PEFT folder by " + ggufVsPeft);
            if (st.margin() > GgufLlamaCppParityTest.CLEAR_MARGIN) {
                clear++;
                assertEquals(st.token(), LlamaCppLogits.argmax(withPeft[s]), at + "argmax");
            }
        }
        assertTrue(effect > 0.05, arch + ": the adapter must visibly move the logits (" + effect + " of the range)");
        assertTrue(clear >= 8, arch + ": only " + clear + " clear steps");
    }

    @Test
    void refusesAnAdapterForAnotherArchitectureOrAModelFile() {
        LlamaConfig llama = config("llama"), qwen = config("qwen2");
        Path peft = dir.resolve("p"), gguf = dir.resolve("q.gguf");
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 4, false, 0.3, 1).write(peft, qwen, "q");
        GgufLoraAdapters.write(PeftAdapterLoader.load("a", peft, qwen, 64), qwen, gguf);
        var e = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("a", gguf, llama, 64));
        assertTrue(e.getMessage().contains("the adapter is for a qwen2 model, the base is llama"), e.getMessage());
        Path model = base("llama");
        e = assertThrows(ModelFormatException.class, () -> PeftAdapterLoader.load("a", model, llama, 64));
        assertTrue(e.getMessage().contains("general.type is '(absent)', not 'adapter'"), e.getMessage());
        assertFalse(GgufLoraAdapters.isGguf(peft));
        assertEquals(DecoderVariant.qwen2(0), qwen.variant());
    }
}
