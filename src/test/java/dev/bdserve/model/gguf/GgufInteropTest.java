package dev.bdserve.model.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * GGUF files exchanged with llama.cpp: written by gguf-py's GGUFWriter and read by GgufFile; written by GgufWriter
 * and read by gguf-py's GGUFReader and by llama.cpp's own reader (libggml-base's gguf_init_from_file, tensor data
 * included); and llama.cpp's vocab files read alike by GgufFile and gguf-py. Everything compared exactly in the
 * JSON form of {@link GgufJson}.
 */
class GgufInteropTest {
    @TempDir Path dir;

    @ParameterizedTest
    @ValueSource(longs = {11, 12, 13})
    void ggufPyWritesGgufFileReads(long seed) {
        JsonNode spec = GgufJson.randomSpec(seed, GgufJson.Profile.GGUF_PY_WRITER);
        Path specFile = dir.resolve("spec.json"), gguf = dir.resolve("py.gguf");
        GgufJson.write(spec, specFile);
        GgufTestFiles.ggufTool("write", specFile.toString(), gguf.toString());
        try (GgufFile f = GgufFile.open(gguf)) {
            assertEquals(3, f.version());
            GgufJson.assertSameJson(spec, GgufJson.content(GgufJson.dump(f)));
        }
        GgufJson.assertSameJson(pyDump(gguf), javaDump(gguf));  // the offsets too
    }

    @ParameterizedTest
    @ValueSource(longs = {21, 22, 23})
    void ggufWriterWritesGgufPyReads(long seed) {
        JsonNode spec = GgufJson.randomSpec(seed, GgufJson.Profile.BDSERVE);
        Path gguf = dir.resolve("java.gguf");
        GgufJson.writer(spec).write(gguf);
        JsonNode py = pyDump(gguf);
        GgufJson.assertSameJson(spec, GgufJson.content(py));
        GgufJson.assertSameJson(javaDump(gguf), py);
    }

    @ParameterizedTest
    @ValueSource(longs = {31, 32, 33})
    void ggufWriterWritesLlamaCppReads(long seed) {
        JsonNode spec = GgufJson.randomSpec(seed, GgufJson.Profile.LLAMA_CPP);
        Path gguf = dir.resolve("java.gguf"), out = dir.resolve("ggml.json");
        GgufJson.writer(spec).write(gguf);
        GgufTestFiles.ggufTool("ggml", GgufTestFiles.ggmlBase().toString(), gguf.toString(), out.toString());
        JsonNode ggml = GgufJson.read(out);
        GgufJson.assertSameJson(ggmlDims(spec), GgufJson.content(ggml));
        GgufJson.assertSameJson(ggmlDims(javaDump(gguf)), ggml);
    }

    /** The dims as llama.cpp tells them: without trailing 1s (ggml keeps 4 and counts the dims up to the last above 1). */
    private static JsonNode ggmlDims(JsonNode n) {
        JsonNode copy = n.deepCopy();
        for (JsonNode t : copy.get("tensors")) {
            ArrayNode dims = (ArrayNode) t.get("dims");
            while (dims.size() > 1 && dims.get(dims.size() - 1).asLong() == 1) dims.remove(dims.size() - 1);
        }
        return copy;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-spm", "llama-bpe", "qwen2", "aquila"})  // aquila is GGUF v2
    void vocabFilesReadAsLlamaCppReadsThem(String name) {
        Path gguf = GgufTestFiles.vocab(name), out = dir.resolve("ggml.json");
        GgufTestFiles.ggufTool("ggml", GgufTestFiles.ggmlBase().toString(), gguf.toString(), out.toString());
        GgufJson.assertSameJson(GgufJson.read(out), javaDump(gguf));
    }

    @Test
    void vocabFileReadsAsGgufPyReadsIt() {  // one only: gguf-py takes ~10 s on the larger vocabularies
        Path gguf = GgufTestFiles.vocab("llama-spm");
        GgufJson.assertSameJson(pyDump(gguf), javaDump(gguf));
    }

    private JsonNode pyDump(Path gguf) {
        Path out = dir.resolve("py.json");
        GgufTestFiles.ggufTool("dump", gguf.toString(), out.toString());
        return GgufJson.read(out);
    }

    private static JsonNode javaDump(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            return GgufJson.dump(f);
        }
    }
}
