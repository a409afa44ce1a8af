package dev.bdserve.model.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** GgufWriter → GgufFile round trips, the typed getters, and the real vocab files of llama.cpp. */
class GgufFileTest {
    @TempDir Path dir;

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5})
    void randomRoundTripOfEveryValueAndTensorType(long seed) {
        JsonNode spec = GgufJson.randomSpec(seed, GgufJson.Profile.BDSERVE);
        Path p = dir.resolve("rt.gguf");
        GgufWriter w = GgufJson.writer(spec);
        w.write(p);
        try (GgufFile f = GgufFile.open(p)) {
            GgufJson.assertSameJson(spec, GgufJson.content(GgufJson.dump(f)));
            assertEquals(3, f.version());
            assertEquals(w.fileSize(), f.fileSize());
            long align = f.alignment();
            assertEquals(0, f.dataStart() % align);
            for (GgufFile.TensorInfo t : f.tensors()) {
                assertEquals(0, (t.offset() - f.dataStart()) % align, t.name());
                assertEquals(t.type().bytes(t.elements()), t.byteSize());
                assertSame(t, f.tensor(t.name()));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void tensorOfEachTypeKeepsDimsTypeAndBytes(GgmlType type) {
        long[] dims = {type.blockSize * 3L, 2, 1, 2};
        byte[] data = new byte[(int) type.bytes(dims[0] * 4)];
        new Random(type.id).nextBytes(data);
        Path p = dir.resolve("t.gguf");
        new GgufWriter().addTensor("w", dims, type, data).addTensor("v", new long[]{type.blockSize}, type, new byte[type.blockBytes]).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            GgufFile.TensorInfo t = f.tensor("w");
            assertArrayEquals(dims, t.dims());
            assertEquals(type, t.type());
            assertEquals(dims[0] * 4, t.elements());
            assertArrayEquals(data, f.data(t).toArray(ValueLayout.JAVA_BYTE));
            assertEquals(List.of("w", "v"), f.tensors().stream().map(GgufFile.TensorInfo::name).toList());
            assertEquals(f.dataStart(), t.offset());
        }
    }

    @Test
    void javaTypesOfValuesAndTypedGetters() {
        Path p = dir.resolve("v.gguf");
        new GgufWriter()
                .put("u8", GgufValueType.UINT8, 255L).put("i8", GgufValueType.INT8, -128).put("u16", GgufValueType.UINT16, 65535L)
                .put("i16", GgufValueType.INT16, -32768L).putU32("u32", 0xFFFF_FFFFL).putI32("i32", Integer.MIN_VALUE)
                .putU64("u64", Long.MAX_VALUE).put("i64", GgufValueType.INT64, Long.MIN_VALUE)
                .putF32("f32", 0.1).put("f64", GgufValueType.FLOAT64, 0.1).putBool("b", true).putString("s", "héllo\0😀")
                .putArray("a", GgufValueType.UINT8, List.of(1L, 200L))
                .putArray("nested", GgufValueType.ARRAY, List.of(new GgufWriter.Array(GgufValueType.STRING, List.of("x")),
                        new GgufWriter.Array(GgufValueType.FLOAT32, List.of()))).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(List.of("u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "b", "s", "a", "nested"),
                    List.copyOf(f.metadata().keySet()));
            assertEquals(255L, f.metadata().get("u8"));
            assertEquals(-128L, f.metadata().get("i8"));
            assertEquals(65535L, f.longValue("u16"));
            assertEquals(-32768L, f.longValue("i16"));
            assertEquals(0xFFFF_FFFFL, f.longValue("u32"));
            assertEquals(Integer.MIN_VALUE, f.longValue("i32"));
            assertEquals(Long.MAX_VALUE, f.longValue("u64"));
            assertEquals(Long.MIN_VALUE, f.longValue("i64"));
            assertEquals((double) 0.1f, f.metadata().get("f32"));  // f32 widened exactly
            assertEquals(0.1, f.doubleValue("f64"));
            assertEquals(Boolean.TRUE, f.metadata().get("b"));
            assertEquals("héllo\0😀", f.string("s"));
            assertEquals(List.of(1L, 200L), f.list("a"));
            assertEquals(GgufValueType.UINT8, ((GgufArray) f.list("a")).elementType());
            assertEquals(200, ((GgufArray) f.list("a")).getLong(1));
            assertEquals(List.of(List.of("x"), List.of()), f.list("nested"));
            assertEquals(GgufValueType.FLOAT32, ((GgufArray) f.list("nested").get(1)).elementType());
            assertEquals(GgufValueType.UINT32, f.valueType("u32"));
            assertEquals(GgufValueType.ARRAY, f.valueType("a"));
            assertThrows(UnsupportedOperationException.class, () -> f.metadata().put("x", 1L));
            assertThrows(UnsupportedOperationException.class, () -> f.list("a").set(0, 2L));
            assertTrue(f.tensors().isEmpty());

            assertEquals("d", f.string("missing", "d"));
            assertEquals(7, f.longValue("missing", 7));
            assertEquals(2.5, f.doubleValue("missing", 2.5));
            assertTrue(f.bool("missing", true));
            assertEquals(List.of(), f.list("missing", List.of()));
            assertEquals(255, f.longValue("u8", 7));

            String file = p.toString();
            assertMessage(file + ": metadata key 'nope' is missing", () -> f.string("nope"));
            assertMessage(file + ": metadata key 'nope' is missing", () -> f.valueType("nope"));
            assertMessage(file + ": metadata key 'u32' is u32, expected a string", () -> f.string("u32"));
            assertMessage(file + ": metadata key 'u32' is u32, expected a string", () -> f.string("u32", "default"));
            assertMessage(file + ": metadata key 's' is str, expected an integer", () -> f.longValue("s"));
            assertMessage(file + ": metadata key 'u8' is u8, expected a float", () -> f.doubleValue("u8"));
            assertMessage(file + ": metadata key 'f32' is f32, expected a bool", () -> f.bool("f32"));
            assertMessage(file + ": metadata key 'b' is bool, expected an array", () -> f.list("b"));
            assertMessage(file + ": no tensor 'w'", () -> f.tensor("w"));
        }
    }

    static void assertMessage(String expected, org.junit.jupiter.api.function.Executable e) {
        assertEquals(expected, assertThrows(ModelFormatException.class, e).getMessage());
    }

    @Test
    void alignmentIsHonoured() {
        Path p = dir.resolve("a.gguf");
        new GgufWriter().alignment(256).addTensor("a", new long[]{3}, GgmlType.F32, new byte[12])
                .addTensor("b", new long[]{1}, GgmlType.F16, new byte[2]).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(256, f.alignment());
            assertEquals(256, f.dataStart());
            assertEquals(512, f.tensor("b").offset());
            assertEquals(514 + 254, f.fileSize());  // the last tensor is padded too, as llama.cpp reads it
        }
    }

    @Test
    void metadataOnlyFileHasNoPadding() throws IOException {
        Path p = dir.resolve("m.gguf");
        new GgufWriter().putString("general.architecture", "llama").write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(Files.size(p), f.dataStart());
            assertEquals(Map.of("general.architecture", "llama"), f.metadata());
        }
    }

    @Test
    void dataIsInvalidAfterCloseButMetadataStays() {
        Path p = dir.resolve("c.gguf");
        new GgufWriter().putArray("a", GgufValueType.FLOAT32, List.of(1.5)).addTensor("t", new long[]{1}, GgmlType.F32, new byte[4]).write(p);
        GgufFile f = GgufFile.open(p);
        var seg = f.data(f.tensor("t"));
        f.close();
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(List.of(1.5), f.list("a"));
    }

    @Test
    void dataOfAForeignTensorIsRefused() {
        Path p = dir.resolve("x.gguf");
        new GgufWriter().addTensor("t", new long[]{1}, GgmlType.F32, new byte[4]).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            var other = new GgufFile.TensorInfo("t", new long[]{1}, GgmlType.F32, 0, 4);
            assertThrows(IllegalArgumentException.class, () -> f.data(other));
        }
    }

    @Test
    void versionTwoReadsLikeThree() throws IOException {
        Path p = dir.resolve("v2.gguf");
        GgufJson.writer(GgufJson.randomSpec(9, GgufJson.Profile.BDSERVE)).write(p);
        JsonNode v3;
        try (GgufFile f = GgufFile.open(p)) { v3 = GgufJson.dump(f); }
        byte[] b = Files.readAllBytes(p);
        b[4] = 2;
        Files.write(p, b);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(2, f.version());
            GgufJson.assertSameJson(GgufJson.content(v3), GgufJson.content(GgufJson.dump(f)));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-spm", "llama-bpe", "qwen2"})
    void llamaCppVocabFiles(String name) {
        try (GgufFile f = GgufFile.open(GgufTestFiles.vocab(name))) {
            assertEquals(3, f.version());
            assertTrue(f.tensors().isEmpty());
            assertEquals(name.equals("qwen2") ? "qwen2" : "llama", f.string("general.architecture"));
            assertEquals(name.equals("llama-spm") ? "llama" : "gpt2", f.string("tokenizer.ggml.model"));
            int n = f.list("tokenizer.ggml.tokens").size();
            assertEquals(Map.of("llama-spm", 32000, "llama-bpe", 128256, "qwen2", 151936).get(name), n);
            assertEquals(n, f.list("tokenizer.ggml.token_type").size());
            String arch = f.string("general.architecture");
            if (f.has(arch + ".vocab_size")) assertEquals(n, f.longValue(arch + ".vocab_size"));
            assertEquals(GgufValueType.STRING, ((GgufArray) f.list("tokenizer.ggml.tokens")).elementType());
            assertEquals(GgufValueType.INT32, ((GgufArray) f.list("tokenizer.ggml.token_type")).elementType());
            if (name.equals("llama-spm")) {
                assertEquals(List.of("<unk>", "<s>", "</s>"), f.list("tokenizer.ggml.tokens").subList(0, 3));
                assertEquals(32000, f.list("tokenizer.ggml.scores").size());
                assertEquals(1, f.longValue("tokenizer.ggml.bos_token_id"));
                assertTrue(f.bool("tokenizer.ggml.add_bos_token"));
                assertEquals((double) 1e-5f, f.doubleValue("llama.attention.layer_norm_rms_epsilon"));
            } else {
                assertFalse(f.list("tokenizer.ggml.merges").isEmpty());
                assertEquals("Ġ Ġ", f.list("tokenizer.ggml.merges").get(0));
            }
        }
    }

    @Test
    void versionTwoVocabFile() {
        try (GgufFile f = GgufFile.open(GgufTestFiles.vocab("aquila"))) {
            assertEquals(2, f.version());
            assertEquals(100008, f.list("tokenizer.ggml.tokens").size());
        }
    }
}
