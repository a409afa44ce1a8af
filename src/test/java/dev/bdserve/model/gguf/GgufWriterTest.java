package dev.bdserve.model.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** GgufWriter's layout and its checks of keys, values and tensors. */
class GgufWriterTest {
    @TempDir Path dir;

    private static void assertRefused(String message, Executable e) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, e).getMessage());
    }

    @Test
    void layoutIsGgufV3LittleEndian() throws IOException {
        Path p = dir.resolve("l.gguf");
        new GgufWriter().putU32("k", 0x01020304).addTensor("t", new long[]{2}, GgmlType.F32, new byte[]{1, 2, 3, 4, 5, 6, 7, 8}).write(p);
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals('G', b.get(0));
        assertEquals('F', b.get(3));
        assertEquals(3, b.getInt(4));
        assertEquals(1, b.getLong(8));   // tensors
        assertEquals(1, b.getLong(16));  // keys
        assertEquals(1, b.getLong(24));  // key length
        assertEquals('k', b.get(32));
        assertEquals(GgufValueType.UINT32.id, b.getInt(33));
        assertEquals(0x01020304, b.getInt(37));
        assertEquals(1, b.getLong(41));  // tensor name length
        assertEquals('t', b.get(49));
        assertEquals(1, b.getInt(50));   // dims
        assertEquals(2, b.getLong(54));
        assertEquals(GgmlType.F32.id, b.getInt(62));
        assertEquals(0, b.getLong(66));  // offset in the data section
        assertEquals(128, b.capacity());  // 74 bytes of header padded to 96, 8 bytes of data padded to 32
        assertEquals(1, b.get(96));
        assertEquals(8, b.get(103));
    }

    /** A tensor filled as the file is written gives the same file as its bytes given up front; the fill sees its own slice. */
    @Test
    void filledTensorIsWrittenInPlace() throws IOException {
        byte[] data = new byte[3 * 34];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 7);
        Path given = dir.resolve("given.gguf"), filled = dir.resolve("filled.gguf");
        new GgufWriter().addTensor("a", new long[]{2}, GgmlType.F32, new byte[8]).addTensor("q", new long[]{32, 3}, GgmlType.Q8_0, data).write(given);
        long[] size = {-1};
        new GgufWriter().addTensor("a", new long[]{2}, GgmlType.F32, new byte[8]).addTensor("q", new long[]{32, 3}, GgmlType.Q8_0, seg -> {
            size[0] = seg.byteSize();
            MemorySegment.copy(data, 0, seg, ValueLayout.JAVA_BYTE, 0, data.length);
        }).write(filled);
        assertEquals(data.length, size[0]);
        assertArrayEquals(Files.readAllBytes(given), Files.readAllBytes(filled));
    }

    @Test
    void memorySegmentTensor() {
        Path p = dir.resolve("s.gguf");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(34);
            s.set(ValueLayout.JAVA_BYTE, 33, (byte) 7);
            new GgufWriter().addTensor("q", new long[]{32}, GgmlType.Q8_0, s).write(p);
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(7, f.data(f.tensor("q")).get(ValueLayout.JAVA_BYTE, 33));
        }
    }

    @Test
    void refusedTensors() {
        GgufWriter w = new GgufWriter().addTensor("a", new long[]{1}, GgmlType.F32, new byte[4]);
        assertRefused("duplicate tensor 'a'", () -> w.addTensor("a", new long[]{1}, GgmlType.F32, new byte[4]));
        assertRefused("empty tensor name", () -> w.addTensor("", new long[]{1}, GgmlType.F32, new byte[4]));
        assertRefused("tensor '" + "x".repeat(64) + "': name longer than 63 UTF-8 bytes (llama.cpp's limit)",
                () -> w.addTensor("x".repeat(64), new long[]{1}, GgmlType.F32, new byte[4]));
        assertRefused("tensor 'b': 0 dimensions; a tensor has 1 to 4", () -> w.addTensor("b", new long[]{}, GgmlType.F32, new byte[4]));
        assertRefused("tensor 'b': 5 dimensions; a tensor has 1 to 4", () -> w.addTensor("b", new long[]{1, 1, 1, 1, 1}, GgmlType.F32, new byte[4]));
        assertRefused("tensor 'b': dimension 1 is 0, must be at least 1", () -> w.addTensor("b", new long[]{2, 0}, GgmlType.F32, new byte[0]));
        assertRefused("tensor 'b': F32 [4611686018427387904, 2] takes more than 9223372036854775807 bytes",
                () -> w.addTensor("b", new long[]{1L << 62, 2}, GgmlType.F32, new byte[0]));
        assertRefused("tensor 'b': innermost dimension 16 is not a whole number of Q4_0 blocks of 32 weights",
                () -> w.addTensor("b", new long[]{16, 2}, GgmlType.Q4_0, new byte[18]));
        assertRefused("tensor 'b': 17 bytes of data, but Q4_0 [32, 1] takes 18", () -> w.addTensor("b", new long[]{32, 1}, GgmlType.Q4_0, new byte[17]));
    }

    @Test
    void refusedKeysAndValues() {
        GgufWriter w = new GgufWriter().putU32("k", 1);
        assertRefused("duplicate metadata key 'k'", () -> w.putU32("k", 2));
        assertRefused("empty metadata key", () -> w.putU32("", 2));
        assertRefused("key 'x': 256 is out of the u8 range [0, 255]", () -> w.put("x", GgufValueType.UINT8, 256L));
        assertRefused("key 'x': -129 is out of the i8 range [-128, 127]", () -> w.put("x", GgufValueType.INT8, -129));
        assertRefused("key 'x': -1 is out of the u32 range [0, 4294967295]", () -> w.putU32("x", -1));
        assertRefused("key 'x': 2147483648 is out of the i32 range [-2147483648, 2147483647]", () -> w.putI32("x", 1L << 31));
        assertRefused("key 'x': -1 is out of the u64 range [0, 9223372036854775807]", () -> w.putU64("x", -1));
        assertRefused("key 'x': u16 takes a Long or Integer, not String", () -> w.put("x", GgufValueType.UINT16, "1"));
        assertRefused("key 'x': f64 takes a Double or Float, not Long", () -> w.put("x", GgufValueType.FLOAT64, 1L));
        assertRefused("key 'x': 1.0E300 is out of the f32 range", () -> w.putF32("x", 1e300));
        assertRefused("key 'x': str takes a String, not Integer", () -> w.put("x", GgufValueType.STRING, 1));
        assertRefused("key 'x': bool takes a Boolean, not null", () -> w.put("x", GgufValueType.BOOL, null));
        assertRefused("key 'x': string is not valid Unicode (unpaired surrogate)", () -> w.putString("x", "a\uD800"));
        assertRefused("metadata key 'a\uD800': string is not valid Unicode (unpaired surrogate)", () -> w.putString("a\uD800", "x"));
        assertRefused("key 'x'[1]: i32 takes a Long or Integer, not Double",
                () -> w.putArray("x", GgufValueType.INT32, List.of(1L, 2.0)));
        assertRefused("key 'x'[0]: arr takes a GgufWriter.Array or GgufArray, not String",
                () -> w.putArray("x", GgufValueType.ARRAY, List.of("s")));
        assertRefused("general.alignment must be u32, not u64", () -> w.putU64("general.alignment", 64));
        assertRefused("general.alignment 48 is not a power of two", () -> w.alignment(48));
    }

    @Test
    void nestingUpToTheReadersLimit() {
        Object v = new GgufWriter.Array(GgufValueType.UINT8, List.of(1L));
        for (int i = 1; i < GgufCursor.MAX_DEPTH; i++) v = new GgufWriter.Array(GgufValueType.ARRAY, List.of(v));
        Path p = dir.resolve("n.gguf");
        new GgufWriter().put("deep", GgufValueType.ARRAY, v).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            Object x = f.list("deep");
            for (int i = 1; i < GgufCursor.MAX_DEPTH; i++) x = ((List<?>) x).get(0);
            assertEquals(List.of(1L), x);
        }
        Object deeper = new GgufWriter.Array(GgufValueType.ARRAY, List.of(v));
        assertThrows(IllegalArgumentException.class, () -> new GgufWriter().put("deep", GgufValueType.ARRAY, deeper));
    }

    @Test
    void copiesMetadataFromAFileWithTypes() {
        Path a = dir.resolve("a.gguf"), b = dir.resolve("b.gguf");
        GgufJson.writer(GgufJson.randomSpec(3, GgufJson.Profile.BDSERVE)).write(a);
        try (GgufFile f = GgufFile.open(a)) {
            GgufWriter w = new GgufWriter();
            for (String k : f.metadata().keySet()) w.put(k, f.valueType(k), f.metadata().get(k));
            w.write(b);
            try (GgufFile g = GgufFile.open(b)) {
                GgufJson.assertSameJson(GgufJson.dump(f).get("kv"), GgufJson.dump(g).get("kv"));
            }
        }
    }

    @Test
    void failedWriteLeavesNoFile() throws IOException {
        Path p = dir.resolve("missing-dir/x.gguf");
        assertThrows(java.io.UncheckedIOException.class, () -> new GgufWriter().putU32("k", 1).write(p));
        assertFalse(Files.exists(p));
    }
}
