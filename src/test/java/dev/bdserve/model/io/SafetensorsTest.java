package dev.bdserve.model.io;

import dev.bdserve.model.ModelFormatException;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsTest {
    @TempDir Path dir;

    static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) r.nextGaussian();
        return f;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void roundTripEachDtype(DType dt) {
        Matrix m = Matrix.fromFloats(dt, 5, 7, random(35, 1));
        float[] v = random(9, 2);
        Path p = dir.resolve("rt.safetensors");
        new SafetensorsWriter().metadata("format", "pt").add("w", m).add("n", dt, v).write(p);
        try (Safetensors st = Safetensors.open(p)) {
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertEquals(java.util.List.of("w", "n"), java.util.List.copyOf(st.tensors().keySet()));
            Safetensors.TensorInfo ti = st.tensors().get("w");
            assertEquals(dt, ti.dtype());
            assertEquals(dt.safetensorsName(), ti.dtypeName());
            assertArrayEquals(new long[]{5, 7}, ti.shape());
            Matrix back = st.readMatrix("w", 0, 5, 0, 7);
            assertEquals(dt, back.dtype());
            assertArrayEquals(m.toFloats(), back.toFloats());
            if (dt == DType.F32) assertArrayEquals(m.f32(), back.f32()); else assertArrayEquals(m.bits(), back.bits());
            // a shard: rows 1..4, cols 2..6
            Matrix s = st.readMatrix("w", 1, 4, 2, 6);
            assertEquals(3, s.rows());
            assertEquals(4, s.cols());
            for (int r = 0; r < 3; r++) for (int c = 0; c < 4; c++) assertEquals(m.get(r + 1, c + 2), s.get(r, c));
            assertArrayEquals(m.toFloats(), st.readFloats("w"));
            assertArrayEquals(Matrix.fromFloats(dt, 1, 9, v).toFloats(), st.readFloats("n"));
        }
        // header padded to a multiple of 8
        long n = readHeaderLen(p);
        assertEquals(0, n % 8);
    }

    @Test
    void headerIsLittleEndianAndDataIsLittleEndian() throws IOException {
        Path p = dir.resolve("le.safetensors");
        new SafetensorsWriter().add("x", DType.F32, new float[]{1.0f}).write(p);
        byte[] b = Files.readAllBytes(p);
        // 1.0f = 0x3F800000, little-endian 00 00 80 3F at the end of the file
        assertArrayEquals(new byte[]{0, 0, (byte) 0x80, 0x3F}, java.util.Arrays.copyOfRange(b, b.length - 4, b.length));
        assertEquals('{', b[8]);
    }

    @Test
    void unknownDtypeAllowedButNotReadable() {
        Path p = dir.resolve("i64.safetensors");
        new SafetensorsWriter().addRaw("ids", "I64", new long[]{2}, new byte[16]).add("w", DType.F32, new float[]{1, 2}).write(p);
        try (Safetensors st = Safetensors.open(p)) {
            assertNull(st.tensors().get("ids").dtype());
            assertEquals("I64", st.tensors().get("ids").dtypeName());
            assertEquals(16, st.bytes("ids").byteSize());
            var e = assertThrows(ModelFormatException.class, () -> st.readMatrix("ids", 0, 1, 0, 2));
            assertTrue(e.getMessage().contains("tensor 'ids' has dtype I64, which cannot be read"), e.getMessage());
            assertThrows(ModelFormatException.class, () -> st.readFloats("ids"));
            var e2 = assertThrows(ModelFormatException.class, () -> st.readFloats("nope"));
            assertTrue(e2.getMessage().contains("no tensor 'nope'"), e2.getMessage());
        }
    }

    @Test
    void sliceOutOfRange() {
        Path p = dir.resolve("s.safetensors");
        new SafetensorsWriter().add("w", Matrix.fromFloats(DType.F32, 2, 3, new float[6])).write(p);
        try (Safetensors st = Safetensors.open(p)) {
            var e = assertThrows(ModelFormatException.class, () -> st.readMatrix("w", 0, 3, 0, 3));
            assertTrue(e.getMessage().contains("tensor 'w' slice rows [0, 3) cols [0, 3) is outside its shape [2, 3]"), e.getMessage());
        }
    }

    @Test
    void emptyHeaderObjectIsValid() throws IOException {
        Path p = raw("{}      ", 0);
        try (Safetensors st = Safetensors.open(p)) {
            assertTrue(st.tensors().isEmpty());
        }
    }

    // ---------------------------------------------------------------- malformed files

    static long readHeaderLen(Path p) {
        try {
            byte[] b = Files.readAllBytes(p);
            long n = 0;
            for (int i = 7; i >= 0; i--) n = (n << 8) | (b[i] & 0xFF);
            return n;
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    /** A file with the given header text, declared length = its byte length, then dataLen zero bytes. */
    Path raw(String header, int dataLen) throws IOException {
        return raw(header.getBytes(StandardCharsets.UTF_8), -1, dataLen);
    }

    Path raw(byte[] header, long declaredLen, int dataLen) throws IOException {
        long n = declaredLen >= 0 ? declaredLen : header.length;
        byte[] out = new byte[8 + header.length + dataLen];
        for (int i = 0; i < 8; i++) out[i] = (byte) (n >>> (8 * i));
        System.arraycopy(header, 0, out, 8, header.length);
        Path p = dir.resolve("model.safetensors");
        Files.write(p, out);
        return p;
    }

    String fails(Path p) {
        return assertThrows(ModelFormatException.class, () -> Safetensors.open(p).close()).getMessage();
    }

    void assertFails(Path p, String expected) {
        String msg = fails(p);
        assertTrue(msg.startsWith(p.toString() + ": "), msg);
        assertTrue(msg.contains(expected), "message was: " + msg);
    }

    @Test
    void truncatedBelowEightBytes() throws IOException {
        Path p = dir.resolve("model.safetensors");
        Files.write(p, new byte[5]);
        assertFails(p, "file is 5 bytes, too short for the 8-byte safetensors header length");
    }

    @Test
    void truncatedHeaderLengthBeyondFile() throws IOException {
        Path p = raw("{}".getBytes(StandardCharsets.UTF_8), 100, 0);
        assertFails(p, "header length 100 extends beyond the end of the file (10 bytes; truncated?)");
    }

    @Test
    void truncatedDataShorterThanDeclared() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 5);
        assertFails(p, "file is truncated: tensor data ends at offset 8 (tensor 'a') but only 5 bytes follow the header");
    }

    @Test
    void overlappingOffsets() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertFails(p, "tensor 'b' data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    }

    @Test
    void holeBetweenTensors() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12);
        assertFails(p, "hole in the data section: bytes [4, 8) belong to no tensor (before tensor 'b')");
    }

    @Test
    void holeAtStart() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
        assertFails(p, "hole in the data section: bytes [0, 4) belong to no tensor (before tensor 'a')");
    }

    @Test
    void outOfRangeOffsets() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[99999999999999999999,99999999999999999999]}}", 0);
        assertFails(p, "tensor 'a': data_offsets [99999999999999999999,99999999999999999999] are out of range");
    }

    @Test
    void negativeOffsets() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 0);
        assertFails(p, "tensor 'a': data_offsets [-4,0] are negative");
    }

    @Test
    void beginAfterEnd() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
        assertFails(p, "tensor 'a': data_offsets [8, 4] have begin > end");
    }

    @Test
    void wrongSizeForShape() throws IOException {
        Path p = raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,10]}}", 10);
        assertFails(p, "tensor 'x' data_offsets [0, 10] do not match shape [3] × F32 = 12 bytes");
    }

    @Test
    void badJson() throws IOException {
        Path p = raw("{\"a\": {\"dtype\": }", 0);
        assertFails(p, "header is not valid JSON");
    }

    @Test
    void trailingJsonTokens() throws IOException {
        Path p = raw("{} {}", 0);
        assertFails(p, "header is not valid JSON");
    }

    @Test
    void headerNotAnObject() throws IOException {
        Path p = raw("[1, 2]  ", 0);
        assertFails(p, "header does not start with '{' (a safetensors header is a JSON object)");
    }

    @Test
    void entryNotAnObject() throws IOException {
        Path p = raw("{\"a\": 3}", 0);
        assertFails(p, "tensor 'a': entry is not a JSON object");
    }

    @Test
    void invalidUtf8() throws IOException {
        byte[] h = "{\"a\":1}".getBytes(StandardCharsets.UTF_8);
        h[2] = (byte) 0xC3; // a lone UTF-8 lead byte replaces 'a'
        Path p = raw(h, -1, 0);
        assertFails(p, "header is not valid UTF-8");
    }

    @Test
    void oversizedHeaderLength() throws IOException {
        Path p = raw("{}".getBytes(StandardCharsets.UTF_8), 200_000_000L, 0);
        assertFails(p, "header length 200000000 exceeds the 100000000-byte limit");
    }

    @Test
    void hugeUnsignedHeaderLength() throws IOException {
        Path p = raw("{}".getBytes(StandardCharsets.UTF_8), Long.MAX_VALUE, 0);
        assertFails(p, "exceeds the 100000000-byte limit");
    }

    @Test
    void negativeShape() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1, 2],\"data_offsets\":[0,0]}}", 0);
        assertFails(p, "tensor 'a': shape [-1,2] has a negative dimension");
    }

    @Test
    void nonIntegerShape() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,0]}}", 0);
        assertFails(p, "tensor 'a': shape [1.5] has a non-integer dimension");
    }

    @Test
    void missingDtype() throws IOException {
        Path p = raw("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        assertFails(p, "tensor 'a': missing \"dtype\"");
    }

    @Test
    void dtypeNotString() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        assertFails(p, "tensor 'a': \"dtype\" is not a string");
    }

    @Test
    void unknownDtypeName() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        assertFails(p, "tensor 'a': unknown dtype 'Q4'");
    }

    @Test
    void missingShape() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
        assertFails(p, "tensor 'a': missing \"shape\"");
    }

    @Test
    void missingDataOffsets() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
        assertFails(p, "tensor 'a': missing \"data_offsets\"");
    }

    @Test
    void dataOffsetsWrongArity() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
        assertFails(p, "tensor 'a': \"data_offsets\" must be an array [begin, end], got [0]");
    }

    @Test
    void trailingGarbageAfterData() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 7);
        assertFails(p, "3 bytes of trailing data after the last tensor");
    }

    @Test
    void metadataMustBeStrings() throws IOException {
        Path p = raw("{\"__metadata__\":{\"format\":1}}", 0);
        assertFails(p, "\"__metadata__\" value for key 'format' is not a string");
    }

    @Test
    void duplicateKeysRejected() throws IOException {
        Path p = raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0);
        assertFails(p, "header is not valid JSON");
    }

    @Test
    void missingFile() {
        assertFails(dir.resolve("absent.safetensors"), "file not found");
    }
}
