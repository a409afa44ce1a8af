package dev.bdserve.model.gguf;

import dev.bdserve.model.ModelFormatException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.StandardCharsets;

/**
 * Bounds-checked little-endian reads through a mapped GGUF file, and the metadata values built on them. Every
 * failure is a {@link ModelFormatException} "file: where: detail", where {@link #where} names the header, the
 * key or the tensor being read; a length is checked against the bytes left before anything is allocated.
 */
final class GgufCursor {
    /** The longest string accepted (llama.cpp's limit). */
    static final long MAX_STRING_BYTES = 1L << 30;
    /** The longest array accepted (llama.cpp's limit). */
    static final long MAX_ARRAY_LENGTH = 1L << 30;
    /** Arrays of arrays nest at most this deep. */
    static final int MAX_DEPTH = 16;

    private final MemorySegment seg;
    private final String file;
    private final long size;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder();  // reports malformed input
    long pos;
    String where = "header";

    GgufCursor(MemorySegment seg, String file) {
        this.seg = seg;
        this.file = file;
        this.size = seg.byteSize();
    }

    long size() { return size; }

    long remaining() { return size - pos; }

    /** The exception for a problem at {@link #where}. */
    ModelFormatException fail(String detail) {
        return new ModelFormatException(file + ": " + where + ": " + detail);
    }

    private void need(long n, String what) {
        if (n > size - pos)
            throw fail(what + " (" + n + " bytes at offset " + pos + ") runs past the end of the file (" + size + " bytes; truncated?)");
    }

    int i32(String what) {
        need(4, what);
        int v = seg.get(GgufArray.I32, pos);
        pos += 4;
        return v;
    }

    long u32(String what) { return Integer.toUnsignedLong(i32(what)); }

    /** A u64 or i64 as its raw 64 bits. */
    long i64(String what) {
        need(8, what);
        long v = seg.get(GgufArray.I64, pos);
        pos += 8;
        return v;
    }

    /** A length-prefixed UTF-8 string; {@code index} ≥ 0 names an array element. */
    String string(String what, long index) {
        long n = i64(label(what, index) + " length");
        if (n < 0 || n > MAX_STRING_BYTES)
            throw fail(label(what, index) + ": string length " + Long.toUnsignedString(n) + " exceeds the limit of " + MAX_STRING_BYTES + " bytes");
        if (n == 0) return "";
        need(n, label(what, index) + " string");
        String s;
        try {
            s = utf8.reset().decode(seg.asSlice(pos, n).asByteBuffer()).toString();
        } catch (CharacterCodingException e) {
            throw fail(label(what, index) + ": string of " + n + " bytes at offset " + pos + " is not valid UTF-8");
        }
        pos += n;
        return s;
    }

    private static String label(String what, long index) {
        return index < 0 ? what : what + "[" + index + "]";
    }

    /** A value of type {@code t}: Long, Double, Boolean, String or {@link GgufArray}. */
    Object value(GgufValueType t, String what, int depth) {
        return switch (t) {
            case STRING -> string(what, -1);
            case ARRAY -> array(what, depth);
            default -> {
                need(t.size, t.label + " " + what);
                Object v = scalar(t, pos, what, -1);
                pos += t.size;
                yield v;
            }
        };
    }

    private Object scalar(GgufValueType t, long at, String what, long index) {
        return switch (t) {
            case UINT8 -> Byte.toUnsignedLong(seg.get(ValueLayout.JAVA_BYTE, at));
            case INT8 -> (long) seg.get(ValueLayout.JAVA_BYTE, at);
            case UINT16 -> Short.toUnsignedLong(seg.get(GgufArray.I16, at));
            case INT16 -> (long) seg.get(GgufArray.I16, at);
            case UINT32 -> Integer.toUnsignedLong(seg.get(GgufArray.I32, at));
            case INT32 -> (long) seg.get(GgufArray.I32, at);
            case INT64 -> seg.get(GgufArray.I64, at);
            case UINT64 -> {
                long v = seg.get(GgufArray.I64, at);
                if (v < 0) throw fail(label(what, index) + ": u64 value " + Long.toUnsignedString(v)
                        + " is above " + Long.MAX_VALUE + ", the largest integer bdserve reads");
                yield v;
            }
            case FLOAT32 -> (double) seg.get(GgufArray.F32, at);
            case FLOAT64 -> seg.get(GgufArray.F64, at);
            case BOOL -> {
                byte b = seg.get(ValueLayout.JAVA_BYTE, at);
                if (b != 0 && b != 1) throw fail(label(what, index) + ": bool value " + b + " is neither 0 nor 1");
                yield b == 1;
            }
            case STRING, ARRAY -> throw new IllegalArgumentException(t.label + " is not a scalar type");
        };
    }

    private GgufArray array(String what, int depth) {
        int typeId = i32(what + " element type");
        GgufValueType et = GgufValueType.ofId(typeId);
        if (et == null) throw fail(what + ": unknown array element type " + typeId + " (GGUF value types are 0 to 12)");
        if (et == GgufValueType.ARRAY && depth + 1 >= MAX_DEPTH) throw fail(what + ": arrays nested more than " + MAX_DEPTH + " deep");
        long n = i64(what + " length");
        if (n < 0 || n > MAX_ARRAY_LENGTH)
            throw fail(what + ": array length " + Long.toUnsignedString(n) + " exceeds the limit of " + MAX_ARRAY_LENGTH + " elements");
        long min = n * et.minBytes();
        if (min > size - pos)
            throw fail(what + ": array of " + n + " " + et.label + " values (at least " + min + " bytes at offset " + pos
                    + ") runs past the end of the file (" + size + " bytes; truncated?)");
        if (et.size > 0) {
            if (et == GgufValueType.UINT64 || et == GgufValueType.BOOL)
                for (long i = 0; i < n; i++) scalar(et, pos + i * et.size, what, i);
            GgufArray a = GgufArray.copyOf(et, seg, pos, (int) n);
            pos += min;
            return a;
        }
        Object[] items = new Object[(int) n];
        for (int i = 0; i < n; i++)
            items[i] = et == GgufValueType.STRING ? string(what, i) : array(label(what, i), depth + 1);
        return GgufArray.ofObjects(et, items);
    }
}
