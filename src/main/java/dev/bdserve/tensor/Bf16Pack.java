package dev.bdserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

/**
 * fp32 values packed as bf16 (round to nearest even, NaN kept NaN, as {@link Numerics#floatToBf16}) into off-heap
 * memory: the operands of the native bf16 matrix products. Each vector routine has a scalar twin that gives the same
 * bits.
 */
public final class Bf16Pack {
    private Bf16Pack() {}

    static final VectorSpecies<Float> FS = VectorWidth.FLOAT;
    static final int VL = FS.length();

    /** dst[byteOff + 2i] = bf16(x[off + i]) for i &lt; n. */
    public static void floats(float[] x, int off, int n, MemorySegment dst, long byteOff) {
        int i = 0;
        for (; i <= n - VL; i += VL) store(FloatVector.fromArray(FS, x, off + i), dst, byteOff + 2L * i);
        for (; i < n; i++) dst.set(JAVA_SHORT_UNALIGNED, byteOff + 2L * i, Numerics.floatToBf16(x[off + i]));
    }

    /** The scalar twin of {@link #floats}. */
    public static void floatsScalar(float[] x, int off, int n, MemorySegment dst, long byteOff) {
        for (int i = 0; i < n; i++) dst.set(JAVA_SHORT_UNALIGNED, byteOff + 2L * i, Numerics.floatToBf16(x[off + i]));
    }

    /**
     * Tile t (rows 32t .. 32t + 31, zero past {@code rows}) of a row-major bf16 matrix [rows, cols] (cols a multiple of
     * 32: the layout's blocks are 32 columns, 16 pairs, wide) into dst at {@code byteOff} in oneDNN's
     * {@code BA16a32b2a} layout: per column pair, the 32 rows each with its two columns side by side, element (r, k)
     * at short {@code (k/2)·64 + 2r + k%2}.
     */
    public static void blockedPairs(short[] bits, int rows, int cols, int t, MemorySegment dst, long byteOff) {
        if (cols % 32 != 0) throw new IllegalArgumentException("the blocked layout needs a multiple of 32 columns, got " + cols);
        for (int k = 0; k < cols; k += 2) {
            long pair = byteOff + (long) (k / 2) * 64 * 2;
            for (int r = 0; r < 32; r++) {
                int row = 32 * t + r;
                int v = row < rows ? (bits[row * cols + k] & 0xFFFF) | (bits[row * cols + k + 1] << 16) : 0;
                dst.set(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, pair + 4L * r, v);
            }
        }
    }

    /** Rows [from, to) of w (widened by {@link Weight#row}) as bf16 into dst as [to − from][cols]; tmp holds cols floats. */
    public static void rows(Weight w, int from, int to, MemorySegment dst, float[] tmp) { rows(w, from, to, dst, tmp, 0, false); }

    /**
     * As {@link #rows(Weight, int, int, MemorySegment, float[])}, each row widened into tmp[tmpOff .. tmpOff + cols),
     * with {@code permuted} as {@link Weight#permutedRow}.
     */
    public static void rows(Weight w, int from, int to, MemorySegment dst, float[] tmp, int tmpOff, boolean permuted) {
        int cols = w.cols();
        for (int r = from; r < to; r++) {
            if (permuted) w.permutedRow(r, tmp, tmpOff);
            else w.row(r, tmp, tmpOff);
            floats(tmp, tmpOff, cols, dst, (long) (r - from) * cols * 2);
        }
    }

    /**
     * Lanes i of {@code a} and {@code b}, all finite, as bf16 pairs: lane i of the result holds bf16(a[i]) in its low
     * half and bf16(b[i]) in its high half (in memory, little-endian: a[i] then b[i]).
     */
    static IntVector pairFinite(FloatVector a, FloatVector b) {
        IntVector x = a.reinterpretAsInts(), y = b.reinterpretAsInts();
        IntVector lo = x.add(x.lanewise(VectorOperators.LSHR, 16).and(1).add(0x7FFF)).lanewise(VectorOperators.LSHR, 16);
        IntVector hi = y.add(y.lanewise(VectorOperators.LSHR, 16).and(1).add(0x7FFF)).and(0xFFFF0000);
        return lo.or(hi);
    }

    /** The VL lanes of v as bf16 at dst[byteOff ..]. */
    static void store(FloatVector v, MemorySegment dst, long byteOff) {
        IntVector b = v.reinterpretAsInts();
        // round to nearest even: add 0x7FFF plus the lowest kept bit, then keep the high half
        IntVector high = b.lanewise(VectorOperators.LSHR, 16);
        IntVector r = b.add(high.and(1).add(0x7FFF)).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Float> nan = v.test(VectorOperators.IS_NAN);
        if (nan.anyTrue()) r = r.blend(high.or(0x40), nan.cast(VectorWidth.INT));      // quiet NaN, sign and payload kept
        ((ShortVector) r.convertShape(VectorOperators.I2S, VectorWidth.SHORT_HALF, 0)).intoMemorySegment(dst, byteOff, ByteOrder.LITTLE_ENDIAN);
    }
}
