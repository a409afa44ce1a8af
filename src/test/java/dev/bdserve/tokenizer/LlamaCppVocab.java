package dev.bdserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.model.gguf.GgufArray;
import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.model.gguf.GgufValueType;
import dev.bdserve.model.gguf.GgufWriter;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * llama.cpp's view of a GGUF vocabulary, through {@code llamacpp_tokenize.mjs} under node (node-llama-cpp's prebuilt
 * library, loading the vocabulary only), and vocabulary files with some metadata changed.
 */
final class LlamaCppVocab {
    private LlamaCppVocab() {}

    /**
     * What llama.cpp says of a vocabulary: its BOS and EOS ids (-1: none), whether it adds them, its end-of-generation
     * ids, and per text the tokens of llama_tokenize with special-token parsing and without BOS/EOS.
     */
    record Result(int bos, int eos, boolean addBos, boolean addEos, List<Integer> eog, List<int[]> tokens) {
        /** The tokens llama_tokenize gives with {@code add_special}: BOS and EOS as the vocabulary asks. */
        int[] withSpecials(int i) {
            int[] t = tokens.get(i);
            int[] out = new int[t.length + (addBos ? 1 : 0) + (addEos ? 1 : 0)];
            if (addBos) out[0] = bos;
            System.arraycopy(t, 0, out, addBos ? 1 : 0, t.length);
            if (addEos) out[out.length - 1] = eos;
            return out;
        }
    }

    static Result tokenize(Path gguf, int vocabSize, List<String> texts) throws Exception {
        Path script = Path.of(LlamaCppVocab.class.getResource("llamacpp_tokenize.mjs").toURI());
        Path in = Files.createTempFile("texts", ".json"), err = Files.createTempFile("node", ".log"),
                result = Files.createTempFile("node", ".out");
        try {
            new ObjectMapper().writeValue(in.toFile(), texts);
            // into a file, which node writes synchronously: a pipe loses what is past 64 KB when the script exits
            Process p = new ProcessBuilder("node", script.toString(), GgufTestFiles.root().toString(), gguf.toString(),
                    Integer.toString(vocabSize), in.toString()).redirectError(err.toFile()).redirectOutput(result.toFile()).start();
            p.getOutputStream().close();
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "node did not finish");
            String out = Files.readString(result, StandardCharsets.UTF_8).trim();
            assertEquals(0, p.exitValue(), () -> "node llamacpp_tokenize.mjs failed on " + gguf + ":\n" + out + "\n" + read(err));
            String last = out.lines().reduce((a, b) -> b).orElse("");
            if (!last.startsWith("{")) fail("node llamacpp_tokenize.mjs printed no result for " + gguf + ":\n" + out + "\n" + read(err));
            JsonNode r = new ObjectMapper().readTree(last);
            List<int[]> tokens = new ArrayList<>();
            for (JsonNode t : r.get("tokens")) {
                int[] ids = new int[t.size()];
                for (int i = 0; i < ids.length; i++) ids[i] = t.get(i).asInt();
                tokens.add(ids);
            }
            List<Integer> eog = new ArrayList<>();
            for (JsonNode e : r.get("eog")) eog.add(e.asInt());
            return new Result(r.get("bos").asInt(), r.get("eos").asInt(), r.get("addBos").asBoolean(), r.get("addEos").asBoolean(),
                    eog, tokens);
        } finally {
            Files.deleteIfExists(in);
            Files.deleteIfExists(err);
            Files.deleteIfExists(result);
        }
    }

    private static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            return "(" + e + ")";
        }
    }

    /**
     * Copies a GGUF file's metadata (it has no tensors: a vocabulary file) into {@code out}, with {@code changes}:
     * a Boolean, Long or String value sets a key (bool, u32, string), null removes it.
     */
    static Path rewrite(Path gguf, Path out, Map<String, Object> changes) {
        GgufWriter w = new GgufWriter();
        try (GgufFile f = GgufFile.open(gguf)) {
            assertEquals(0, f.tensors().size(), gguf + " is not a vocabulary-only file");
            for (Map.Entry<String, Object> e : f.metadata().entrySet()) {
                if (changes.containsKey(e.getKey())) continue;
                GgufValueType t = f.valueType(e.getKey());
                Object v = e.getValue();
                w.put(e.getKey(), t, t == GgufValueType.ARRAY ? new GgufWriter.Array(((GgufArray) v).elementType(), (List<?>) v) : v);
            }
        }
        for (Map.Entry<String, Object> e : changes.entrySet()) {
            switch (e.getValue()) {
                case null -> { }
                case Boolean b -> w.putBool(e.getKey(), b);
                case Long l -> w.putU32(e.getKey(), l);
                case String s -> w.putString(e.getKey(), s);
                default -> throw new IllegalArgumentException("no GGUF type for " + e.getValue());
            }
        }
        w.write(out);
        return out;
    }

    /**
     * A vocabulary file for llama.cpp: {@code gguf}'s metadata other than {@code tokenizer.*} (the architecture's
     * hyper-parameters, which llama.cpp reads even for a vocabulary) and the tokenizer metadata {@code tokenizer} writes.
     */
    static Path withTokenizer(Path gguf, Path out, java.util.function.Consumer<GgufWriter> tokenizer) {
        GgufWriter w = new GgufWriter();
        try (GgufFile f = GgufFile.open(gguf)) {
            for (Map.Entry<String, Object> e : f.metadata().entrySet()) {
                if (e.getKey().startsWith("tokenizer.")) continue;
                GgufValueType t = f.valueType(e.getKey());
                Object v = e.getValue();
                w.put(e.getKey(), t, t == GgufValueType.ARRAY ? new GgufWriter.Array(((GgufArray) v).elementType(), (List<?>) v) : v);
            }
        }
        tokenizer.accept(w);
        w.write(out);
        return out;
    }
}
