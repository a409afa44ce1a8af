package dev.bdserve.tensor;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The width the kernels run at. Surefire runs the kernel tests once per width (pom.xml, profile kernel-widths) with
 * {@value VectorWidth#PROPERTY} set and, separately, the environment variable {@value #EXPECTED} naming the same
 * width: {@link #kernelsRunAtTheWidthOfThisRun} fails a run whose kernels are not at the width it claims to test.
 */
class VectorWidthTest {
    /** Environment variable a width run of the kernel tests sets to the width it means to test. */
    static final String EXPECTED = "BDSERVE_TEST_VECTOR_BITS";

    /** The width this JVM's kernels must run at: the run's declared width, else the property's, else the host default. */
    static int expectedBits() {
        String declared = System.getenv(EXPECTED), property = System.getProperty(VectorWidth.PROPERTY);
        if (declared != null) {
            assertEquals(declared, property, () -> "this run declares " + EXPECTED + "=" + declared + ", but the test JVM's "
                    + VectorWidth.PROPERTY + " is " + property);
            return Integer.parseInt(declared);
        }
        return property != null ? Integer.parseInt(property) : VectorWidth.parse(null, VectorWidth.HOST_BITS);
    }

    @Test
    void kernelsRunAtTheWidthOfThisRun() {
        int bits = expectedBits();
        System.out.println("VectorWidthTest: kernels at " + bits + " bits (host " + VectorWidth.HOST_BITS + ")");
        assertEquals(bits, VectorWidth.BITS);
        assertEquals(bits, VectorWidth.FLOAT.vectorBitSize());
        assertEquals(bits, VectorWidth.INT.vectorBitSize());
        assertEquals(bits, VectorWidth.SHORT.vectorBitSize());
        assertEquals(bits / 2, VectorWidth.SHORT_HALF.vectorBitSize());
        assertEquals(VectorWidth.FLOAT.length(), VectorWidth.INT.length());
        assertEquals(VectorWidth.FLOAT.length(), VectorWidth.SHORT_HALF.length());
        assertEquals(2 * VectorWidth.FLOAT.length(), VectorWidth.SHORT.length());
        assertEquals(bits, Widening.FS.vectorBitSize(), "Widening");
        assertEquals(bits / 32, Widening.VL, "Widening lanes");
        assertEquals(bits / 2, Widening.SS.vectorBitSize(), "Widening shorts");
        assertEquals(bits, Widening.IS.vectorBitSize(), "Widening ints");
        assertEquals(bits, Gemv.FS.vectorBitSize(), "Gemv");
        assertEquals(bits / 32, Gemv.VL, "Gemv lanes");
        assertEquals(bits, Gemv.SP.vectorBitSize(), "Gemv pairs");
        assertEquals(bits, SmallTGemv.FS.vectorBitSize(), "SmallTGemv");
        assertEquals(bits / 32, SmallTGemv.VL, "SmallTGemv lanes");
        assertEquals(bits, SmallTGemv.SP.vectorBitSize(), "SmallTGemv pairs");
        assertEquals(bits, Gemm.FS.vectorBitSize(), "Gemm");
        assertEquals(bits / 16, Gemm.G, "Gemm token group: two vectors");
        assertEquals(bits, AccumulateTransposed.FS.vectorBitSize(), "AccumulateTransposed");
        assertEquals(bits / 32, AccumulateTransposed.VL, "AccumulateTransposed lanes");
        assertEquals(bits, VectorOps.FS.vectorBitSize(), "VectorOps");
        assertEquals(bits / 32, VectorOps.VL, "VectorOps lanes");
        assertEquals(bits, AttentionOps.FS.vectorBitSize(), "AttentionOps");
        assertEquals(bits / 32, AttentionOps.VL, "AttentionOps lanes");
    }

    @Test
    void defaultIsTheHostWidthWithinTheThree() {
        assertEquals(128, VectorWidth.parse(null, 64));
        assertEquals(128, VectorWidth.parse(null, 128));
        assertEquals(256, VectorWidth.parse(null, 256));
        assertEquals(256, VectorWidth.parse(null, 384));
        assertEquals(512, VectorWidth.parse(null, 512));
        assertEquals(512, VectorWidth.parse(null, 2048));
    }

    @Test
    void namedWidthsWinOverTheHost() {
        assertEquals(128, VectorWidth.parse("128", 512));
        assertEquals(256, VectorWidth.parse("256", 128));
        assertEquals(512, VectorWidth.parse("512", 256));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "64", "1024", "100", " 256", "256 ", "0256", "256bits", "abc"})
    void otherValuesAreRejectedNamingThePropertyAndValue(String value) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VectorWidth.parse(value, 256));
        assertTrue(e.getMessage().contains(VectorWidth.PROPERTY + " is '" + value + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("128, 256 or 512"), e.getMessage());
    }
}
