package dev.bdserve.cli;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.SynthModel;
import dev.bdserve.model.gguf.GgmlType;
import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.io.HfModelWriter;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.SynthTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.bdserve.cli.SynthModelCommandTest.run;
import static dev.bdserve.cli.SynthModelCommandTest.runWithOutput;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code ./bdserve quantize} and {@code --quantize}: an HF model quantized at load generates exactly the text its
 * quantized GGUF does (greedy, at TP 1 and 2), the GGUF carries the tokenizer, an F32 GGUF quantizes to the same
 * tensors as the HF folder, and the refusals name what is wrong.
 */
class QuantizeCommandTest {
    /**
     * Rows of whole K super-blocks, two per row-parallel row so that TP 2 splits them, so that q4_k_m really runs Q4_K
     * and Q6_K weights ("tiny" falls back to Q5_0 / Q8_0, and its 96-wide ffn_down cannot split into whole blocks).
     */
    static final LlamaConfig K = new LlamaConfig(256, 512, 512, 2, 8, 4, 64, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");

    @TempDir Path dir;

    Path model(String shape) {
        Path m = dir.resolve(shape);
        if (shape.equals("k")) {
            HfModelWriter.write(m, new SynthModel(K, DType.F32, 3), DType.F32);
            SynthTokenizer.write(m, K.vocabSize());
        } else {
            SynthModelCommandTest.Run r = run("synth", "model", "--shape", shape, "--dtype", "f32", "--out", m.toString());
            assertEquals(0, r.code(), r.err());
        }
        return m;
    }

    String generate(String... args) {
        String[] base = {"generate", "--prompt", "hello there", "--max-tokens", "12", "--ignore-eos", "--threads", "2"};
        String[] all = new String[base.length + args.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(args, 0, all, base.length, args.length);
        SynthModelCommandTest.Output g = runWithOutput(all);
        assertEquals(0, g.code(), g.err());
        assertFalse(g.out().isBlank(), "generated nothing: " + String.join(" ", args));
        return g.out();
    }

    @ParameterizedTest(name = "{1} on {0}, TP {2}")
    @CsvSource({"tiny, q8_0, 1", "tiny, q4_0, 1", "tiny, q4_k_m, 1", "tiny, q5_k_m, 1", "k, q8_0, 1", "k, q8_0, 2", "k, q4_0, 1",
            "k, q4_k_m, 1", "k, q4_k_m, 2", "k, q5_k_m, 1", "k, q5_k_m, 2"})
    void quantizedAtLoadGeneratesAsTheQuantizedGguf(String shape, String type, int tp) {
        Path m = model(shape), gguf = dir.resolve(shape + "-" + type + ".gguf");
        SynthModelCommandTest.Run q = run("quantize", "--model", m.toString(), "--type", type, "--out", gguf.toString());
        assertEquals(0, q.code(), q.err());
        try (GgufFile f = GgufFile.open(gguf)) {
            assertTrue(f.metadata().containsKey("tokenizer.ggml.tokens"), "the GGUF carries no tokenizer");
            if (shape.equals("k") && type.equals("q4_k_m"))
                assertEquals(GgmlType.Q4_K, f.tensor("blk.0.attn_q.weight").type(), "q4_k_m on rows of 256 should be Q4_K");
        }
        String fromGguf = generate("--model", gguf.toString(), "--tp", Integer.toString(tp));
        String atLoad = generate("--model", m.toString(), "--quantize", type, "--tp", Integer.toString(tp));
        assertEquals(fromGguf, atLoad, shape + " " + type + ": generate with --quantize differs from generate on the quantized GGUF");
    }

    @Test
    void anF32GgufQuantizesToTheSameTensorsAsItsHfFolder() {
        Path m = model("k"), f32 = dir.resolve("k-f32.gguf"), a = dir.resolve("a.gguf"), b = dir.resolve("b.gguf");
        assertEquals(0, run("convert", "--model", m.toString(), "--to", "gguf", "--type", "f32", "--out", f32.toString()).code());
        assertEquals(0, run("quantize", "--model", m.toString(), "--type", "q4_k_m", "--out", a.toString()).code());
        SynthModelCommandTest.Run r = run("quantize", "--model", f32.toString(), "--type", "q4_k_m", "--out", b.toString());
        assertEquals(0, r.code(), r.err());
        try (GgufFile fa = GgufFile.open(a); GgufFile fb = GgufFile.open(b)) {
            assertEquals(types(fa), types(fb));
            for (GgufFile.TensorInfo t : fa.tensors())
                assertEquals(-1, fa.data(t).mismatch(fb.data(fb.tensor(t.name()))), "tensor " + t.name() + " differs");
        }
    }

    @Test
    void refusals() {
        Path m = model("tiny"), q = dir.resolve("q.gguf");
        assertEquals(0, run("quantize", "--model", m.toString(), "--type", "q8_0", "--out", q.toString()).code());
        SynthModelCommandTest.Run r = run("quantize", "--model", q.toString(), "--type", "q4_0", "--out", dir.resolve("x.gguf").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains(q + " is already quantized (tensor ") && r.err().contains("is Q8_0"), r.err());
        r = run("generate", "--model", q.toString(), "--quantize", "q4_0", "--prompt", "hi", "--max-tokens", "2");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--quantize q4_0: " + q + " is already quantized"), r.err());
        r = run("quantize", "--model", m.toString(), "--type", "q3_k_s", "--out", dir.resolve("y.gguf").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--type: unknown quantization type 'q3_k_s' (known: q8_0, q4_0, q4_k_m, q5_k_m)"), r.err());
        r = run("generate", "--model", m.toString(), "--quantize", "int3", "--prompt", "hi", "--max-tokens", "2");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--quantize: unknown quantization type 'int3'"), r.err());
        r = run("generate", "--model", m.toString(), "--quantize", "q8_0", "--tp", "2", "--prompt", "hi", "--max-tokens", "2");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("tensor 'model.layers.0.mlp.down_proj.weight' (quantized at load to Q8_0, blocks of 32 weights) cannot be split"), r.err());
        r = run("quantize", "--model", m.toString(), "--quantize", "q8_0", "--type", "q8_0", "--out", dir.resolve("z.gguf").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--quantize quantizes a model as it loads to run"), r.err());
    }

    static Map<String, GgmlType> types(GgufFile f) {
        Map<String, GgmlType> m = new TreeMap<>();
        for (GgufFile.TensorInfo t : f.tensors()) m.put(t.name(), t.type());
        return m;
    }
}
