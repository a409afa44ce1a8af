package dev.bdserve.model.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.AbstractList;
import java.util.Objects;
import java.util.RandomAccess;

/**
 * An array value of GGUF metadata: an unmodifiable {@code List<Object>} of the Java values of its element type
 * ({@link Long}, {@link Double}, {@link Boolean}, {@link String} or, nested, {@code List<Object>}) that also
 * tells that element type. Numbers and bools are kept packed as in the file (a copy on the heap, so an array
 * of a million u8 takes a megabyte) and boxed on {@link #get}.
 */
public final class GgufArray extends AbstractList<Object> implements RandomAccess {
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GgufValueType elementType;
    private final int size;
    private final MemorySegment packed;  // fixed-size element types: the values as stored, little-endian
    private final Object[] objects;      // strings and arrays

    private GgufArray(GgufValueType elementType, int size, MemorySegment packed, Object[] objects) {
        this.elementType = elementType;
        this.size = size;
        this.packed = packed;
        this.objects = objects;
    }

    /** Copies {@code n} fixed-size values of {@code type} (already validated) from {@code src} at {@code offset}. */
    static GgufArray copyOf(GgufValueType type, MemorySegment src, long offset, int n) {
        long bytes = (long) n * type.size;
        MemorySegment heap = MemorySegment.ofArray(new long[Math.toIntExact((bytes + 7) / 8)]);
        MemorySegment.copy(src, offset, heap, 0, bytes);
        return new GgufArray(type, n, heap, null);
    }

    /** Wraps strings or arrays (not copied). */
    static GgufArray ofObjects(GgufValueType type, Object[] items) {
        return new GgufArray(type, items.length, null, items);
    }

    /** The type of every element. */
    public GgufValueType elementType() { return elementType; }

    @Override public int size() { return size; }

    @Override public Object get(int i) {
        Objects.checkIndex(i, size);
        if (objects != null) return objects[i];
        return switch (elementType) {
            case FLOAT32, FLOAT64 -> getDouble(i);
            case BOOL -> packed.get(ValueLayout.JAVA_BYTE, i) != 0;
            default -> getLong(i);
        };
    }

    /** Element {@code i} of an integer array, unboxed. */
    public long getLong(int i) {
        Objects.checkIndex(i, size);
        long o = (long) i * elementType.size;
        return switch (elementType) {
            case UINT8 -> Byte.toUnsignedLong(packed.get(ValueLayout.JAVA_BYTE, o));
            case INT8 -> packed.get(ValueLayout.JAVA_BYTE, o);
            case UINT16 -> Short.toUnsignedLong(packed.get(I16, o));
            case INT16 -> packed.get(I16, o);
            case UINT32 -> Integer.toUnsignedLong(packed.get(I32, o));
            case INT32 -> packed.get(I32, o);
            case UINT64, INT64 -> packed.get(I64, o);
            default -> throw new IllegalStateException("not an integer array: " + elementType.label);
        };
    }

    /** Element {@code i} of an f32 or f64 array, unboxed (f32 widened exactly). */
    public double getDouble(int i) {
        Objects.checkIndex(i, size);
        return switch (elementType) {
            case FLOAT32 -> packed.get(F32, (long) i * 4);
            case FLOAT64 -> packed.get(F64, (long) i * 8);
            default -> throw new IllegalStateException("not a float array: " + elementType.label);
        };
    }
}
