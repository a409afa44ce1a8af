package dev.bdserve.model.gguf;

import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every truncation and thousands of seeded random byte changes of a good file either read as a valid file (all
 * metadata and tensor bytes then readable) or fail with a ModelFormatException naming the file: never another
 * exception, never a hang.
 */
class GgufFuzzTest {
    @TempDir Path dir;

    private byte[] goodBytes() throws IOException {
        Path p = dir.resolve("good.gguf");
        GgufMalformedTest.goodFile()
                .putArray("test.nested", GgufValueType.ARRAY, List.of(new GgufWriter.Array(GgufValueType.FLOAT32, List.of(1.0, 2.0)),
                        new GgufWriter.Array(GgufValueType.ARRAY, List.of(new GgufWriter.Array(GgufValueType.BOOL, List.of(true))))))
                .putArray("test.bools", GgufValueType.BOOL, List.of(true, false))
                .putArray("test.u64s", GgufValueType.UINT64, List.of(1L, Long.MAX_VALUE))
                .put("test.f64", GgufValueType.FLOAT64, 2.5)
                .addTensor("q4k", new long[]{256}, GgmlType.Q4_K, new byte[144])
                .write(p);
        return Files.readAllBytes(p);
    }

    /** Opens {@code b}: valid (then everything is read) or a ModelFormatException naming the file; true if valid. */
    private boolean check(byte[] b, String what) {
        Path p = dir.resolve("fuzz.gguf");
        try {
            Files.write(p, b);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        try (GgufFile f = GgufFile.open(p)) {
            for (var e : f.metadata().entrySet()) touch(e.getValue());
            for (GgufFile.TensorInfo t : f.tensors()) {
                byte[] data = f.data(t).toArray(ValueLayout.JAVA_BYTE);
                assertTrue(data.length == t.byteSize() && t.offset() + t.byteSize() <= b.length, what);
            }
            return true;
        } catch (ModelFormatException e) {
            assertTrue(e.getMessage().startsWith(p + ": "), what + ": message does not name the file: " + e.getMessage());
            return false;
        } catch (RuntimeException | Error e) {
            throw new AssertionError(what + ": " + e, e);
        }
    }

    private static void touch(Object v) {
        if (v instanceof List<?> l) for (Object x : l) touch(x);
        else if (v == null) throw new AssertionError("null value");
    }

    @Test
    @Timeout(120)
    void everyTruncation() throws IOException {
        byte[] good = goodBytes();
        assertTrue(check(good, "the good file"));
        int valid = 0;
        for (int n = 0; n < good.length; n++) if (check(Arrays.copyOf(good, n), "truncated to " + n + " bytes")) valid++;
        assertTrue(valid < 64, valid + " truncations valid: only cuts in the padding after the last tensor should be");
    }

    @Test
    @Timeout(120)
    void randomByteChanges() throws IOException {
        byte[] good = goodBytes();
        SplittableRandom r = new SplittableRandom(20260520);
        int valid = 0;
        for (int i = 0; i < 3000; i++) {
            byte[] b = good.clone();
            int changes = 1 + r.nextInt(i % 3 == 0 ? 4 : 1);
            StringBuilder what = new StringBuilder("case " + i + ":");
            for (int c = 0; c < changes; c++) {
                int pos = r.nextInt(b.length);
                byte v = (byte) (r.nextBoolean() ? b[pos] ^ (1 << r.nextInt(8)) : r.nextInt(256));
                b[pos] = v;
                what.append(" byte ").append(pos).append(" := ").append(v & 0xFF);
            }
            if (check(b, what.toString())) valid++;
        }
        assertTrue(valid > 0 && valid < 3000, valid + " of 3000 changed files valid");
    }
}
