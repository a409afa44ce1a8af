package dev.bdserve.cli;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.TensorSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** {@code ./bdserve synth model --arch ...}: a model of each family, as an HF folder and as GGUF, and the refusals. */
class SynthModelCommandTest {
    @TempDir Path dir;

    record Run(int code, String err) {}

    record Output(int code, String out, String err) {}

    static Run run(String... args) {
        Output o = runWithOutput(args);
        return new Run(o.code(), o.err());
    }

    static Output runWithOutput(String... args) {
        var cl = Main.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Output(code, out.toString(), err.toString());
    }

    @ParameterizedTest(name = "{0} on {1} as {2}")
    @CsvSource({"qwen2, tiny, hf", "qwen3, tiny, hf", "mistral, tiny, hf", "qwen2, tiny, gguf", "qwen3, tiny, gguf", "mistral, tiny, gguf",
            ", tiny-qwen3, hf", "qwen3, tiny-qwen3, gguf"})
    void writesAModelOfTheFamily(String arch, String shape, String format) throws Exception {
        Path out = dir.resolve(format.equals("gguf") ? "m.gguf" : "m");
        Run r = arch == null
                ? run("synth", "model", "--shape", shape, "--dtype", "f32", "--format", format, "--out", out.toString())
                : run("synth", "model", "--arch", arch, "--shape", shape, "--dtype", "f32", "--format", format, "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        String family = arch != null ? arch : ModelShapes.get(shape).variant().family();
        try (TensorSource src = ModelFiles.open(out)) {
            DecoderVariant v = src.config().variant();
            // GGUF holds Mistral as the llama architecture, as llama.cpp's converter writes it
            assertEquals(format.equals("gguf") && family.equals("mistral") ? "llama" : family, v.family());
            assertEquals(family.equals("qwen2"), v.qkvBias());
            assertEquals(family.equals("qwen3"), v.qkNorm());
            assertEquals(ModelShapes.get(shape).hiddenSize(), src.config().hiddenSize());
        }
        if (format.equals("hf"))
            assertTrue(Files.readString(out.resolve("config.json")).contains("\"model_type\" : \"" + family + "\"")
                    || Files.readString(out.resolve("config.json")).contains("\"model_type\":\"" + family + "\""), Files.readString(out.resolve("config.json")));
    }

    /**
     * Each family end to end through {@code generate}: a tiny model and a synthetic adapter in its module names
     * (Phi-3's fused ones), greedy, at TP 1 and TP 2, the same text.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"tiny-qwen2", "tiny-qwen3", "tiny-mistral", "tiny-gemma2", "tiny-gemma3", "tiny-phi3"})
    void generatesWithAnAdapterAtTp1AndTp2(String shape) {
        Path model = dir.resolve("m"), adapter = dir.resolve("a");
        assertEquals(0, run("synth", "model", "--shape", shape, "--dtype", "f32", "--out", model.toString()).code());
        Run a = run("synth", "adapter", "--model", model.toString(), "--rank", "4", "--out", adapter.toString());
        assertEquals(0, a.code(), a.err());
        String[] texts = new String[2];
        for (int tp = 1; tp <= 2; tp++) {
            Output g = runWithOutput("generate", "--model", model.toString(), "--adapter", adapter.toString(), "--prompt", "hello there",
                    "--max-tokens", "12", "--ignore-eos", "--tp", Integer.toString(tp), "--threads", "2");
            assertEquals(0, g.code(), g.err());
            texts[tp - 1] = g.out();
        }
        assertFalse(texts[0].isBlank(), shape + " generated nothing");
        assertEquals(texts[0], texts[1], shape + ": TP 2 generates other text than TP 1");
    }

    /** {@code adapter convert --to gguf}: the GGUF LoRA loads back as the PEFT folder and generates the same text. */
    @Test
    void convertsAnAdapterToGgufAndGeneratesTheSame() {
        Path model = dir.resolve("m"), adapter = dir.resolve("a"), gguf = dir.resolve("a.gguf");
        assertEquals(0, run("synth", "model", "--shape", "tiny", "--dtype", "f32", "--out", model.toString()).code());
        assertEquals(0, run("synth", "adapter", "--model", model.toString(), "--rank", "4", "--bd-nblocks", "2", "--out", adapter.toString()).code());
        Run c = run("adapter", "convert", "--model", model.toString(), "--to", "gguf", adapter.toString(), gguf.toString());
        assertEquals(0, c.code(), c.err());
        String[] texts = new String[2];
        Path[] adapters = {adapter, gguf};
        for (int i = 0; i < 2; i++) {
            Output g = runWithOutput("generate", "--model", model.toString(), "--adapter", adapters[i].toString(), "--prompt", "hello",
                    "--max-tokens", "12", "--ignore-eos");
            assertEquals(0, g.code(), g.err());
            texts[i] = g.out();
        }
        assertEquals(texts[0], texts[1]);
        Run bad = run("adapter", "convert", "--model", model.toString(), "--to", "safetensors", adapter.toString(), gguf.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--to must be gguf, got 'safetensors'"), bad.err());
    }

    @Test
    void refusesAnotherFamilysShapeAndAnUnknownArchitecture() {
        Run r = run("synth", "model", "--arch", "qwen2", "--shape", "qwen3-0.6b", "--out", dir.resolve("x").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("shape 'qwen3-0.6b' is a qwen3 model; --arch qwen2 takes a llama shape"), r.err());
        r = run("synth", "model", "--arch", "gemma9", "--shape", "tiny", "--out", dir.resolve("y").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("unknown architecture 'gemma9'; known: llama, qwen2, qwen3, mistral"), r.err());
        r = run("synth", "model", "--shape", "tiny-mistral", "--format", "gguf", "--dtype", "f32", "--out", dir.resolve("w.gguf").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("sliding window 8 cannot be written"), r.err());
    }
}
