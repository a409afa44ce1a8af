package dev.bdserve.model.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link GgmlCodec#dequantize} against ggml's {@code to_float} of the prebuilt libggml-base, bit for bit
 * (raw float bits, so NaN payloads and signed zeros count): random blocks, blocks with extreme fp16 scales and
 * extreme quant bytes, whole tables of half values, rows of many blocks at odd offsets.
 */
class GgmlDequantizeTest {
    /** fp16 scales at the edges: ±0, subnormals, 1, ±65504, ±inf, quiet and signalling NaNs of both signs. */
    static final int[] SPECIAL_HALVES = {0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF,
            0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0xFDFF, 0x7FFF};
    /** Fillers for the quant bytes: all nibbles and int8s at their minimum, maximum and in between. */
    static final int[] FILLS = {0x00, 0xFF, 0x80, 0x7F, 0x0F, 0xF0, 0x55, 0xAA, 0x88, 0x77};

    /** Byte offsets of the fp16 scales in a block (for F16 and BF16 the value itself). */
    static int[] halves(GgmlType t) {
        return switch (t) {
            case F32 -> new int[0];
            case F16, BF16, Q4_0, Q5_0, Q8_0 -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q6_K -> new int[] {208};
        };
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void ggmlTraitsAgreeWithGgmlType(GgmlType t) {
        GgmlReference.Traits tr = GgmlReference.get().traits(t);
        assertEquals(t.name().toLowerCase(), tr.name().toLowerCase());
        assertEquals(t.blockSize, tr.blockSize());
        assertEquals(t.blockBytes, tr.typeSize());
        assertEquals(t.quantized(), tr.quantized());
        if (t == GgmlType.F32) assertNull(tr.toFloat(), "ggml has no to_float for f32 (the test compares with a copy)");
        else assertNotNull(tr.toFloat());
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void randomRowsMatchGgml(GgmlType t) {
        for (int seed = 0; seed < 300; seed++) {
            Random r = new Random(seed * 7919L + t.id);
            int blocks = 1 + r.nextInt(t.quantized() ? 12 : 300);
            ByteArrayOutputStream row = new ByteArrayOutputStream();
            for (int b = 0; b < blocks; b++) {
                byte[] block = new byte[t.blockBytes];
                r.nextBytes(block);
                // most blocks get a finite, moderate scale (random bytes alone are NaN or inf 1 time in 32)
                int kind = r.nextInt(4);
                for (int at : halves(t)) {
                    if (kind == 1) putHalf(block, at, SPECIAL_HALVES[r.nextInt(SPECIAL_HALVES.length)]);
                    else if (kind >= 2) putHalf(block, at, Float.floatToFloat16((float) (r.nextGaussian() * Math.pow(10, r.nextInt(9) - 6))));
                }
                row.writeBytes(block);
            }
            assertSameAsGgml(t, row.toByteArray(), r, "seed " + seed);
        }
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void extremeBlocksMatchGgml(GgmlType t) {
        int[] at = halves(t);
        ByteArrayOutputStream row = new ByteArrayOutputStream();
        for (int fill : FILLS) {
            if (at.length == 2) {
                for (int d : SPECIAL_HALVES) for (int m : SPECIAL_HALVES) row.writeBytes(block(t, fill, d, m));
            } else if (at.length == 1) {
                for (int d : SPECIAL_HALVES) row.writeBytes(block(t, fill, d, 0));
            } else {
                row.writeBytes(block(t, fill, 0, 0));
            }
        }
        assertSameAsGgml(t, row.toByteArray(), new Random(t.id), "extreme blocks");
    }

    /** Every one of the 65536 half values in each scale slot of each block type, with random quants and other scales. */
    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"})
    void everyFp16ScaleMatchesGgml(GgmlType t) {
        Random r = new Random(t.id);
        int[] at = halves(t);
        byte[] row = new byte[at.length * 65536 * t.blockBytes];
        r.nextBytes(row);
        for (int slot = 0; slot < at.length; slot++)
            for (int h = 0; h < 65536; h++) putHalf(row, (slot * 65536 + h) * t.blockBytes + at[slot], h);
        assertSameAsGgml(t, row, r, "every fp16 scale");
    }

    /** Every one of the 65536 half values (F16) and bfloat16 values (BF16), signalling NaNs included. */
    @ParameterizedTest
    @EnumSource(names = {"F16", "BF16"})
    void everyHalfMatchesGgml(GgmlType t) {
        byte[] all = new byte[2 * 65536];
        for (int h = 0; h < 65536; h++) putHalf(all, 2 * h, h);
        assertSameAsGgml(t, all, new Random(1), "all 65536 values");
    }

    /**
     * The same NaN- and infinity-rich blocks dequantised thousands of times, so that the JIT's optimised code
     * (which may reorder commutative operations, and with them which NaN survives) is checked, not just the
     * interpreter's.
     */
    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void compiledCodeStillMatchesGgml(GgmlType t) {
        Random r = new Random(42 + t.id);
        int blocks = t.quantized() ? 2048 / t.blockSize : 512;
        byte[] row = new byte[blocks * t.blockBytes];
        r.nextBytes(row);
        for (int b = 0; b < blocks; b++)
            for (int at : halves(t)) putHalf(row, b * t.blockBytes + at, SPECIAL_HALVES[r.nextInt(SPECIAL_HALVES.length)]);
        int n = blocks * t.blockSize;
        float[] want = t == GgmlType.F32 ? MemorySegment.ofArray(row).toArray(GgmlCodec.F32) : GgmlReference.get().toFloat(t, row);
        MemorySegment src = MemorySegment.ofArray(row);
        float[] got = new float[n];
        for (int run = 0; run < 3000; run++) {
            GgmlCodec.dequantize(t, src, 0, got, 0, n);
            for (int i = 0; i < n; i++)
                if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(want[i]))
                    fail(String.format("%s run %d: weight %d: got %08x, ggml %08x", t, run, i,
                            Float.floatToRawIntBits(got[i]), Float.floatToRawIntBits(want[i])));
        }
    }

    @Test
    void f32IsARawCopyIncludingSignallingNaNs() {
        int[] bits = {0, 0x8000_0000, 1, 0x7F7F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x7F80_0001, 0xFFBF_FFFF, 0x3F80_0000};
        ByteBuffer buf = ByteBuffer.allocate(4 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int b : bits) buf.putInt(b);
        float[] out = new float[bits.length];
        GgmlCodec.dequantize(GgmlType.F32, MemorySegment.ofArray(buf.array()), 0, out, 0, bits.length);
        for (int i = 0; i < bits.length; i++) assertEquals(bits[i], Float.floatToRawIntBits(out[i]), "index " + i);
    }

    @Test
    void checksItsArguments() {
        MemorySegment seg = MemorySegment.ofArray(new byte[2 * 34]);
        float[] out = new float[64];
        assertThrows(IllegalArgumentException.class, () -> GgmlCodec.dequantize(GgmlType.Q8_0, seg, 0, out, 0, 48));
        assertThrows(IndexOutOfBoundsException.class, () -> GgmlCodec.dequantize(GgmlType.Q8_0, seg, 1, out, 0, 64));
        assertThrows(IndexOutOfBoundsException.class, () -> GgmlCodec.dequantize(GgmlType.Q8_0, seg, 0, out, 1, 64));
        assertThrows(IndexOutOfBoundsException.class, () -> GgmlCodec.dequantize(GgmlType.Q8_0, seg, -1, out, 0, 32));
    }

    static byte[] block(GgmlType t, int fill, int firstHalf, int secondHalf) {
        byte[] b = new byte[t.blockBytes];
        java.util.Arrays.fill(b, (byte) fill);
        int[] at = halves(t);
        if (at.length > 0) putHalf(b, at[0], firstHalf);
        if (at.length > 1) putHalf(b, at[1], secondHalf);
        return b;
    }

    static void putHalf(byte[] b, int at, int h) {
        b[at] = (byte) h;
        b[at + 1] = (byte) (h >>> 8);
    }

    /**
     * Dequantises {@code blocks} with ggml and with {@link GgmlCodec} (from a heap or native segment at a random
     * byte offset, into a random offset of the output) and fails at the first weight whose bits differ.
     */
    static void assertSameAsGgml(GgmlType t, byte[] blocks, Random r, String what) {
        int n = Math.toIntExact(blocks.length / t.blockBytes * t.blockSize);
        float[] want = t == GgmlType.F32
                ? MemorySegment.ofArray(blocks).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN))
                : GgmlReference.get().toFloat(t, blocks);
        int srcOffset = r.nextInt(8), dstOffset = r.nextInt(5);
        float[] got = new float[dstOffset + n + 3];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = r.nextBoolean() ? MemorySegment.ofArray(new byte[srcOffset + blocks.length])
                    : arena.allocate(srcOffset + blocks.length);
            MemorySegment.copy(blocks, 0, src, ValueLayout.JAVA_BYTE, srcOffset, blocks.length);
            GgmlCodec.dequantize(t, src, srcOffset, got, dstOffset, n);
        }
        for (int i = 0; i < n; i++) {
            int g = Float.floatToRawIntBits(got[dstOffset + i]), w = Float.floatToRawIntBits(want[i]);
            if (g != w) {
                int b = i / t.blockSize;
                fail(String.format("%s %s: weight %d (block %d, index %d): got %08x (%s), ggml %08x (%s); block %s",
                        t, what, i, b, i % t.blockSize, g, got[dstOffset + i], w, want[i],
                        HexFormat.of().formatHex(blocks, b * t.blockBytes, (b + 1) * t.blockBytes)));
            }
        }
    }
}
