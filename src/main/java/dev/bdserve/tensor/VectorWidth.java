package dev.bdserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The one vector width all kernels run at, chosen once when this class initialises: the system property
 * {@value #PROPERTY} (128, 256 or 512 bits), else the host's preferred width ({@link #HOST_BITS}, clamped to
 * those three). Every kernel class copies the species it needs into its own {@code static final} fields: C2
 * treats a static final species as a constant and compiles the vector operations to instructions, while a
 * species it cannot fold (a parameter, a non-final field) leaves them in slow generic code.
 *
 * <p>Any width runs on any host: a species wider than the CPU's vectors is executed by the Vector API's
 * Java fallback, correctly but many times slower. That is what lets the kernel tests run at every width on
 * one machine; for serving, use the host's width (the default).
 */
public final class VectorWidth {
    private VectorWidth() {}

    /** System property naming the width in bits: 128, 256 or 512. */
    public static final String PROPERTY = "bdserve.vector.bits";

    /** The host's preferred float vector width in bits (what the CPU executes natively). */
    public static final int HOST_BITS = FloatVector.SPECIES_PREFERRED.vectorBitSize();

    /** The width the kernels run at, in bits: 128, 256 or 512. */
    public static final int BITS = parse(System.getProperty(PROPERTY), HOST_BITS);

    /** Floats at {@link #BITS}. */
    public static final VectorSpecies<Float> FLOAT = switch (BITS) {
        case 128 -> FloatVector.SPECIES_128;
        case 256 -> FloatVector.SPECIES_256;
        default -> FloatVector.SPECIES_512;
    };

    /** Ints with the lanes of {@link #FLOAT} (same bits): widened 16-bit weights, or 16-bit pairs. */
    public static final VectorSpecies<Integer> INT = switch (BITS) {
        case 128 -> IntVector.SPECIES_128;
        case 256 -> IntVector.SPECIES_256;
        default -> IntVector.SPECIES_512;
    };

    /** Shorts with the lane count of {@link #FLOAT} (half the bits): BF16 / F16 weights loaded to be widened. */
    public static final VectorSpecies<Short> SHORT_HALF = switch (BITS) {
        case 128 -> ShortVector.SPECIES_64;
        case 256 -> ShortVector.SPECIES_128;
        default -> ShortVector.SPECIES_256;
    };

    /** Shorts with the bits of {@link #FLOAT} (twice its lanes): 16-bit weights loaded as int pairs. */
    public static final VectorSpecies<Short> SHORT = switch (BITS) {
        case 128 -> ShortVector.SPECIES_128;
        case 256 -> ShortVector.SPECIES_256;
        default -> ShortVector.SPECIES_512;
    };

    /**
     * The width named by {@code value} (the property's text), or the default for a host whose preferred width
     * is {@code hostBits} when it is null: the widest of 128, 256 and 512 not above it (128 below that).
     *
     * @throws IllegalArgumentException when value is not exactly 128, 256 or 512
     */
    static int parse(String value, int hostBits) {
        if (value == null) return hostBits >= 512 ? 512 : hostBits >= 256 ? 256 : 128;
        return switch (value) {
            case "128" -> 128;
            case "256" -> 256;
            case "512" -> 512;
            default -> throw new IllegalArgumentException(
                    "system property " + PROPERTY + " is '" + value + "': the kernels' vector width must be 128, 256 or 512 (bits)");
        };
    }
}
