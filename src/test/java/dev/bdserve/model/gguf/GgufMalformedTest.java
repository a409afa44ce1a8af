package dev.bdserve.model.gguf;

import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** One test per malformation: the bad bytes are a good file with one field changed or cut; each message is exact. */
class GgufMalformedTest {
    @TempDir Path dir;
    private byte[] good;
    private Path bad;
    private String file;
    private long dataStart, tokOffset, outOffset;

    /** 8 keys (#0..#7) and two tensors, 64-byte alignment. */
    static GgufWriter goodFile() {
        return new GgufWriter()
                .putString("general.architecture", "llama")
                .alignment(64)
                .putU32("test.count", 7)
                .putString("test.name", "hello")
                .putArray("test.list", GgufValueType.INT32, List.of(1L, 2L, 3L))
                .putArray("test.words", GgufValueType.STRING, List.of("ab", "cd"))
                .putBool("test.flag", true)
                .putU64("test.big", 5)
                .addTensor("tok.weight", new long[]{64, 2}, GgmlType.Q8_0, new byte[2 * 2 * 34])
                .addTensor("out.weight", new long[]{8, 3}, GgmlType.F32, new byte[96]);
    }

    @BeforeEach
    void writeGoodFile() throws IOException {
        Path p = dir.resolve("good.gguf");
        goodFile().write(p);
        good = Files.readAllBytes(p);
        try (GgufFile f = GgufFile.open(p)) {
            dataStart = f.dataStart();
            tokOffset = f.tensor("tok.weight").offset();
            outOffset = f.tensor("out.weight").offset();
        }
        bad = dir.resolve("bad.gguf");
        file = bad.toString();
    }

    private void assertBad(byte[] b, String detail) {
        try {
            Files.write(bad, b);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufFile.open(bad).close());
        assertEquals(file + ": " + detail, e.getMessage());
    }

    /** Where the UTF-8 of {@code s} is in the good file (it must be there once). */
    private int at(String s) {
        byte[] n = s.getBytes(StandardCharsets.UTF_8);
        int found = -1;
        for (int i = 0; i + n.length <= good.length; i++)
            if (Arrays.equals(good, i, i + n.length, n, 0, n.length)) {
                assertEquals(-1, found, s + " is in the file twice");
                found = i;
            }
        assertTrue(found >= 0, s + " is not in the file");
        return found;
    }

    private int after(String s) { return at(s) + s.getBytes(StandardCharsets.UTF_8).length; }

    /** The value of a key (after its type). */
    private int value(String key) { return after(key) + 4; }

    private byte[] with(int pos, int v) {
        byte[] b = good.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(pos, v);
        return b;
    }

    private byte[] withLong(int pos, long v) {
        byte[] b = good.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(pos, v);
        return b;
    }

    private byte[] cut(long n) { return Arrays.copyOf(good, (int) n); }

    private byte[] renamed(String from, String to) {
        byte[] b = good.clone();
        byte[] t = to.getBytes(StandardCharsets.UTF_8);
        assertEquals(from.length(), t.length);
        System.arraycopy(t, 0, b, at(from), t.length);
        return b;
    }

    private String past(long n, long pos, long size) {
        return "(" + n + " bytes at offset " + pos + ") runs past the end of the file (" + size + " bytes; truncated?)";
    }

    // --- header

    @Test void fileShorterThanTheHeader() {
        assertBad(cut(20), "file is 20 bytes, too short for the 24-byte GGUF header");
    }

    @Test void wrongMagic() {
        byte[] b = good.clone();
        b[3] = 'X';
        assertBad(b, "header: not a GGUF file: magic is 'GGUX', expected 'GGUF'");
        b[0] = 0;
        assertBad(b, "header: not a GGUF file: magic is '\\x00GUX', expected 'GGUF'");
    }

    @Test void versionOne() {
        assertBad(with(4, 1), "header: GGUF version 1 is not supported; bdserve reads versions 2 and 3 (convert the model again)");
    }

    @Test void unsupportedVersions() {
        assertBad(with(4, 4), "header: unsupported GGUF version 4; bdserve reads versions 2 and 3");
        assertBad(with(4, 0), "header: unsupported GGUF version 0; bdserve reads versions 2 and 3");
        assertBad(with(4, -1), "header: unsupported GGUF version 4294967295; bdserve reads versions 2 and 3");
    }

    @Test void bigEndian() {
        assertBad(with(4, 0x0300_0000), "header: big-endian GGUF (version 3 byte-swapped) is not supported; bdserve reads little-endian GGUF");
    }

    @Test void absurdTensorCount() {
        long rest = good.length - 24;
        assertBad(withLong(8, 1L << 40), "header: tensor count 1099511627776 cannot fit: each tensor info takes at least 33 bytes and only "
                + rest + " follow the header (corrupt count or truncated file?)");
        assertBad(withLong(8, -1), "header: tensor count 18446744073709551615 cannot fit: each tensor info takes at least 33 bytes and only "
                + rest + " follow the header (corrupt count or truncated file?)");
    }

    @Test void absurdKeyValueCount() {
        long rest = good.length - 24;
        assertBad(withLong(16, rest / 14 + 1), "header: key/value count " + (rest / 14 + 1) + " cannot fit: each key/value pair takes at least 14 bytes and only "
                + rest + " follow the header (corrupt count or truncated file?)");
    }

    // --- truncation

    @Test void truncatedInAKey() {
        int key = at("test.flag");
        assertBad(cut(key + 3), "key #6: key string " + past(9, key, key + 3));
        assertBad(cut(key - 3), "key #6: key length " + past(8, key - 8, key - 3));
    }

    @Test void truncatedInAValue() {
        int v = value("test.big");
        assertBad(cut(v + 2), "key 'test.big': u64 value " + past(8, v, v + 2));
        assertBad(cut(v - 2), "key 'test.big': value type " + past(4, v - 4, v - 2));
        int s = value("test.name");
        assertBad(cut(s + 8 + 2), "key 'test.name': value string " + past(5, s + 8, s + 10));
    }

    @Test void truncatedSoEarlyThatTheCountsCannotFit() {  // 8 keys take at least 8 × 14 bytes
        int key = at("test.count");
        assertBad(cut(key + 3), "header: key/value count 8 cannot fit: each key/value pair takes at least 14 bytes and only "
                + (key + 3 - 24) + " follow the header (corrupt count or truncated file?)");
    }

    @Test void truncatedInAnArray() {
        int a = value("test.list");
        assertBad(cut(a + 12 + 5), "key 'test.list': value: array of 3 i32 values (at least 12 bytes at offset " + (a + 12)
                + ") runs past the end of the file (" + (a + 17) + " bytes; truncated?)");
        int w = value("test.words"), second = w + 12 + 8 + 2;  // after the first string "ab"
        assertBad(cut(second + 8 + 1), "key 'test.words': value[1] string " + past(2, second + 8, second + 9));
    }

    @Test void truncatedInATensorInfo() {
        int dims = after("out.weight") + 4;
        assertBad(cut(dims + 8 + 3), "tensor 'out.weight': dimension 1 " + past(8, dims + 8, dims + 11));
        assertBad(cut(dims + 16 + 4 + 1), "tensor 'out.weight': data offset " + past(8, dims + 20, dims + 21));
    }

    @Test void truncatedTensorData() {
        int n = (int) (outOffset + 90);
        assertBad(cut(n), "tensor 'out.weight': data " + past(96, outOffset, n));
        assertBad(cut(after("out.weight") + 4 + 16 + 4 + 8), "tensor 'tok.weight': data " + past(136, tokOffset, after("out.weight") + 32));
    }

    // --- lengths

    @Test void absurdStringLength() {
        int s = value("test.name");
        assertBad(withLong(s, 1L << 31), "key 'test.name': value: string length 2147483648 exceeds the limit of 1073741824 bytes");
        assertBad(withLong(s, -1), "key 'test.name': value: string length 18446744073709551615 exceeds the limit of 1073741824 bytes");
        assertBad(withLong(s, 1_000_000), "key 'test.name': value string " + past(1_000_000, s + 8, good.length));
    }

    @Test void absurdArrayLength() {
        int a = value("test.list");
        assertBad(withLong(a + 4, 1L << 31), "key 'test.list': value: array length 2147483648 exceeds the limit of 1073741824 elements");
        assertBad(withLong(a + 4, 1_000_000), "key 'test.list': value: array of 1000000 i32 values (at least 4000000 bytes at offset "
                + (a + 12) + ") runs past the end of the file (" + good.length + " bytes; truncated?)");
        int w = value("test.words");
        assertBad(withLong(w + 4, 1_000_000), "key 'test.words': value: array of 1000000 str values (at least 8000000 bytes at offset "
                + (w + 12) + ") runs past the end of the file (" + good.length + " bytes; truncated?)");
    }

    // --- keys and values

    @Test void duplicateKey() {
        assertBad(renamed("test.name", "test.flag"), "key #6: duplicate key 'test.flag'");
    }

    @Test void emptyKey() {
        assertBad(withLong(at("test.count") - 8, 0), "key #2: empty key");
    }

    @Test void keyNotUtf8() {
        byte[] b = good.clone();
        b[at("test.name")] = (byte) 0xC3;
        assertBad(b, "key #3: key: string of 9 bytes at offset " + at("test.name") + " is not valid UTF-8");
    }

    @Test void stringValueNotUtf8() {
        byte[] b = good.clone();
        b[at("hello") + 4] = (byte) 0xFF;
        assertBad(b, "key 'test.name': value: string of 5 bytes at offset " + at("hello") + " is not valid UTF-8");
    }

    @Test void unknownValueType() {
        assertBad(with(after("test.count"), 13), "key 'test.count': unknown value type 13 (GGUF value types are 0 to 12)");
        assertBad(with(after("test.count"), -1), "key 'test.count': unknown value type -1 (GGUF value types are 0 to 12)");
    }

    @Test void unknownArrayElementType() {
        assertBad(with(value("test.list"), 99), "key 'test.list': value: unknown array element type 99 (GGUF value types are 0 to 12)");
    }

    @Test void u64AboveLongMax() {
        assertBad(withLong(value("test.big"), -1), "key 'test.big': value: u64 value 18446744073709551615 is above 9223372036854775807, "
                + "the largest integer bdserve reads");
    }

    @Test void boolNeitherZeroNorOne() {
        byte[] b = good.clone();
        b[value("test.flag")] = 2;
        assertBad(b, "key 'test.flag': value: bool value 2 is neither 0 nor 1");
    }

    @Test void arraysNestedTooDeep() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(1000).order(ByteOrder.LITTLE_ENDIAN);
        b.put("GGUF".getBytes(StandardCharsets.US_ASCII)).putInt(3).putLong(0).putLong(1);
        b.putLong(4).put("deep".getBytes(StandardCharsets.US_ASCII)).putInt(9);
        for (int i = 0; i < 16; i++) b.putInt(9).putLong(1);
        b.putInt(4).putLong(0);
        assertBad(Arrays.copyOf(b.array(), b.position()), "key 'deep': value[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: arrays nested more than 16 deep");
    }

    @Test void alignmentNotAPowerOfTwo() {
        int a = value("general.alignment");
        assertBad(with(a, 48), "key 'general.alignment': the alignment 48 is not a power of two");
        assertBad(with(a, 0), "key 'general.alignment': the alignment 0 is not a power of two");
    }

    @Test void alignmentNotU32() {
        assertBad(with(after("general.alignment"), GgufValueType.INT32.id), "key 'general.alignment': the alignment is i32, must be u32");
    }

    // --- tensor infos

    @Test void duplicateTensorName() {
        assertBad(renamed("out.weight", "tok.weight"), "tensor #1: duplicate tensor name 'tok.weight'");
    }

    @Test void emptyTensorName() {
        assertBad(withLong(at("tok.weight") - 8, 0), "tensor #0: empty name");
    }

    @Test void unknownTensorType() {
        int type = after("out.weight") + 4 + 16;
        String supported = "bdserve reads F32 (0), F16 (1), Q4_0 (2), Q4_1 (3), Q5_0 (6), Q5_1 (7), Q8_0 (8), Q4_K (12), Q5_K (13), Q6_K (14), BF16 (30)";
        assertBad(with(type, 99), "tensor 'out.weight': ggml type 99 (unknown) is not supported; " + supported);
        assertBad(with(type, 10), "tensor 'out.weight': ggml type 10 (Q2_K) is not supported; " + supported);
        assertBad(with(type, 4), "tensor 'out.weight': ggml type 4 (unknown) is not supported; " + supported);
    }

    @Test void zeroOrMoreThanFourDims() {
        int nd = after("out.weight");
        assertBad(with(nd, 0), "tensor 'out.weight': 0 dimensions; a tensor has 1 to 4");
        assertBad(with(nd, 5), "tensor 'out.weight': 5 dimensions; a tensor has 1 to 4");
        assertBad(with(nd, -1), "tensor 'out.weight': 4294967295 dimensions; a tensor has 1 to 4");
    }

    @Test void dimBelowOne() {
        int d1 = after("out.weight") + 4 + 8;
        assertBad(withLong(d1, 0), "tensor 'out.weight': dimension 1 is 0, must be at least 1");
        assertBad(withLong(d1, -1), "tensor 'out.weight': dimension 1 is -1, must be at least 1");
    }

    @Test void tooManyElementsOrBytes() {
        int d1 = after("out.weight") + 4 + 8;
        assertBad(withLong(d1, 1L << 62), "tensor 'out.weight': shape [8, 4611686018427387904] has more than 9223372036854775807 elements");
        assertBad(withLong(d1, 1L << 59), "tensor 'out.weight': shape [8, 576460752303423488] of F32 takes more than 9223372036854775807 bytes");
    }

    @Test void innermostDimNotWholeBlocks() {
        assertBad(withLong(after("tok.weight") + 4, 48), "tensor 'tok.weight': innermost dimension 48 is not a whole number of Q8_0 blocks of 32 weights");
    }

    // --- placement

    private int offsetField(String name) { return after(name) + 4 + 16 + 4; }

    @Test void offsetNotAligned() {
        long rel = outOffset - dataStart + 8;
        assertBad(withLong(offsetField("out.weight"), rel), "tensor 'out.weight': data offset " + rel + " is not a multiple of the alignment 64");
    }

    @Test void tensorBeyondTheEndOfTheFile() {
        assertBad(withLong(offsetField("out.weight"), 64 * 1000), "tensor 'out.weight': data " + past(96, dataStart + 64 * 1000, good.length));
        BigInteger huge = new BigInteger("18446744073709551552");  // 2^64 − 64, aligned
        assertBad(withLong(offsetField("out.weight"), huge.longValue()), "tensor 'out.weight': data (96 bytes at offset "
                + huge.add(BigInteger.valueOf(dataStart)) + ") runs past the end of the file (" + good.length + " bytes; truncated?)");
    }

    @Test void overlappingTensors() {
        long a = dataStart, b = dataStart + 64;
        assertBad(withLong(offsetField("out.weight"), 64), "tensor 'out.weight': data (bytes " + b + " to " + (b + 96) + ") overlaps tensor 'tok.weight' (bytes "
                + a + " to " + (a + 136) + ")");
    }

    @Test void theGoodFileIsGood() {
        try (GgufFile f = GgufFile.open(dir.resolve("good.gguf"))) {
            assertEquals(8, f.metadata().size());
            assertEquals(64, f.alignment());
            assertEquals(List.of("ab", "cd"), f.list("test.words"));
        }
    }
}
