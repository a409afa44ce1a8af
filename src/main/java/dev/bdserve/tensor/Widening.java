package dev.bdserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * BF16 and F16 weights widened to fp32 vectors, and the even / odd split of x that lets 16-bit weights be widened
 * as int pairs. The S2I form ({@link #bf16}, {@link #f16}) widens VL 16-bit values into VL float lanes; the pair
 * form (in {@link Gemv} and {@link SmallTGemv}) loads 2·VL BF16 weights as VL ints and takes the even weights as
 * int &lt;&lt; 16 and the odd ones as int &amp; 0xFFFF0000, with no cross-lane step, against x rearranged by
 * {@link #splitPairs}. F16 values must be finite (inf/NaN patterns are not decoded as such: weights never hold
 * them); F16 subnormals are exact.
 */
final class Widening {
    private Widening() {}

    /** Float species of the kernels ({@link VectorWidth}): a static final constant, so C2 compiles the vector code. */
    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();
    /** Shorts with the lane count of FS (half the bits): BF16/F16 loads. */
    static final VectorSpecies<Short> SS = VectorWidth.SHORT_HALF;
    /** Ints with the shape of FS: the widened 16-bit patterns. */
    static final VectorSpecies<Integer> IS = VectorWidth.INT;

    /** VL BF16 values at b[i .. i+VL) widened to fp32 (exact). */
    static FloatVector bf16(short[] b, int i) {
        return ((IntVector) ShortVector.fromArray(SS, b, i).convertShape(VectorOperators.S2I, IS, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** VL finite F16 values at b[i .. i+VL) widened to fp32 (exact, incl. subnormals). */
    static FloatVector f16(short[] b, int i) {
        IntVector v = (IntVector) ShortVector.fromArray(SS, b, i).convertShape(VectorOperators.S2I, IS, 0);
        IntVector bits = v.and(0x8000_0000).or(v.and(0x7FFF).lanewise(VectorOperators.LSHL, 13));
        return bits.reinterpretAsFloats().mul(0x1p112f);
    }

    /**
     * x [cols] with each block of 2·VL features split into [VL even][VL odd] features (the tail
     * past the last full block unchanged), matching 16-bit weights loaded as int pairs: an int lane
     * holds weight 2j in its low and 2j+1 in its high half (little-endian).
     */
    static float[] splitPairs(float[] x, int cols) { return splitPairRows(x, 1, cols); }

    /** {@link #splitPairs} of each of the T rows of x [T, cols]. */
    static float[] splitPairRows(float[] x, int T, int cols) {
        float[] xp = new float[T * cols];                // [T, cols] permuted rows
        int bound = cols - cols % (2 * VL);
        for (int r = 0; r < T * cols; r += cols) {
            for (int b = r; b < r + bound; b += 2 * VL)
                for (int j = 0; j < VL; j++) {
                    xp[b + j] = x[b + 2 * j];
                    xp[b + VL + j] = x[b + 2 * j + 1];
                }
            System.arraycopy(x, r + bound, xp, r + bound, cols - bound);
        }
        return xp;
    }
}
