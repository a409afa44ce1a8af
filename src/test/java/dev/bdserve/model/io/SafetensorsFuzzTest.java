package dev.bdserve.model.io;

import dev.bdserve.model.ModelFormatException;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/** Corrupting any byte of a valid file either leaves it readable or fails with a ModelFormatException. */
class SafetensorsFuzzTest {
    private static final byte[] VALID;

    static {
        try {
            Path tmp = Files.createTempFile("bdserve-fuzz", ".safetensors");
            new SafetensorsWriter().metadata("format", "pt")
                    .add("a", Matrix.fromFloats(DType.BF16, 2, 3, new float[]{1, 2, 3, 4, 5, 6}))
                    .add("b", DType.F32, new float[]{7, 8})
                    .addRaw("c", "I64", new long[]{1}, new byte[8])
                    .write(tmp);
            VALID = Files.readAllBytes(tmp);
            Files.delete(tmp);
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** 200 seeded random corruptions: a position, a byte value and a length change of -3..3. */
    static Stream<Arguments> corruptions() {
        SplittableRandom r = new SplittableRandom(20261129);
        return Stream.generate(() -> Arguments.of(r.nextInt(10_001), (byte) r.nextInt(256), r.nextInt(-3, 4))).limit(200);
    }

    @ParameterizedTest(name = "byte {0} := {1}, length {2}")
    @MethodSource("corruptions")
    void corruptedByteNeverCrashes(int pos, byte value, int lengthDelta) throws IOException {
        byte[] b = java.util.Arrays.copyOf(VALID, Math.max(0, VALID.length + lengthDelta));
        if (b.length > 0) b[pos % b.length] = value;
        Path p = Files.createTempFile("bdserve-fuzz", ".safetensors");
        try {
            Files.write(p, b);
            try (Safetensors st = Safetensors.open(p)) {
                for (Safetensors.TensorInfo ti : st.tensors().values()) {
                    if (ti.dtype() == null) continue;
                    st.readFloats(ti.name());
                }
            } catch (ModelFormatException expected) {
                if (!expected.getMessage().startsWith(p.toString() + ": ")) throw new AssertionError("message does not name the file: " + expected.getMessage());
            }
        } finally {
            Files.delete(p);
        }
    }
}
