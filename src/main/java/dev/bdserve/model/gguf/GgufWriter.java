package dev.bdserve.model.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Writes GGUF version 3 files (little-endian) that llama.cpp, gguf-py and {@link GgufFile} read: typed metadata
 * in insertion order, tensor infos, then each tensor's bytes padded to the alignment ({@code general.alignment},
 * default {@value GgufFile#DEFAULT_ALIGNMENT}). Tensors are given as the raw bytes of their {@link GgmlType}; the
 * writer checks their size but does not quantise. Arguments are checked when added (an
 * {@link IllegalArgumentException} naming the key or tensor); data is not copied, so leave it unchanged until
 * {@link #write}.
 *
 * <p>Values by type: the integer types take a {@link Long} or {@link Integer} in the type's range (u64 at most
 * {@link Long#MAX_VALUE}); f32 and f64 a {@link Double} or {@link Float} (f32 rounded to nearest, finite values
 * must stay finite); bool a {@link Boolean}; string a {@link String}; array an {@link Array} or a
 * {@link GgufArray}. Arrays of arrays nest (gguf-py reads them; llama.cpp's reader refuses them).
 */
public final class GgufWriter {
    /** The longest tensor name llama.cpp takes, in UTF-8 bytes. */
    public static final int MAX_NAME_BYTES = 63;

    /** An array value: elements of one type (each an {@code Array} or {@link GgufArray} when that type is ARRAY). */
    public record Array(GgufValueType elementType, List<?> items) {
        public Array {
            Objects.requireNonNull(elementType, "elementType");
            items = List.copyOf(items);
        }
    }

    /** A tensor: its bytes given ({@code data}) or written by {@code fill} into the file's own slice when it is written. */
    private record Tensor(String name, long[] dims, GgmlType type, long bytes, MemorySegment data, Consumer<MemorySegment> fill) {}

    private final Map<String, byte[]> kv = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private final Set<String> names = new HashSet<>();
    private long alignment = GgufFile.DEFAULT_ALIGNMENT;

    /** Adds a key of any type (see the class comment for the Java value each type takes). */
    public GgufWriter put(String key, GgufValueType type, Object value) {
        if (key == null || key.isEmpty()) throw new IllegalArgumentException("empty metadata key");
        if (kv.containsKey(key)) throw new IllegalArgumentException("duplicate metadata key '" + key + "'");
        Out out = new Out();
        out.string(utf8(key, "metadata key '" + key + "'"));
        out.i32(type.id);
        encode(out, type, value, "key '" + key + "'", -1, 0);
        if (key.equals(GgufFile.ALIGNMENT_KEY)) {
            if (type != GgufValueType.UINT32) throw new IllegalArgumentException(key + " must be u32, not " + type.label);
            long a = ((Number) value).longValue();
            if (a == 0 || (a & (a - 1)) != 0) throw new IllegalArgumentException(key + " " + a + " is not a power of two");
            alignment = a;
        }
        kv.put(key, out.toByteArray());
        return this;
    }

    public GgufWriter putArray(String key, GgufValueType elementType, List<?> items) {
        return put(key, GgufValueType.ARRAY, new Array(elementType, items));
    }

    /** Whether a metadata key has been put. */
    public boolean has(String key) { return kv.containsKey(key); }

    public GgufWriter putString(String key, String value) { return put(key, GgufValueType.STRING, value); }

    public GgufWriter putU32(String key, long value) { return put(key, GgufValueType.UINT32, value); }

    public GgufWriter putI32(String key, long value) { return put(key, GgufValueType.INT32, value); }

    public GgufWriter putU64(String key, long value) { return put(key, GgufValueType.UINT64, value); }

    public GgufWriter putF32(String key, double value) { return put(key, GgufValueType.FLOAT32, value); }

    public GgufWriter putBool(String key, boolean value) { return put(key, GgufValueType.BOOL, value); }

    /** Sets the data alignment, a power of two, stored as the u32 {@code general.alignment}. */
    public GgufWriter alignment(int alignment) { return putU32(GgufFile.ALIGNMENT_KEY, alignment); }

    /** Adds a tensor from bytes in {@code type}'s layout; {@code dims} in ggml order (innermost first). */
    public GgufWriter addTensor(String name, long[] dims, GgmlType type, byte[] data) {
        return addTensor(name, dims, type, MemorySegment.ofArray(data));
    }

    /** Adds a tensor from bytes in {@code type}'s layout; {@code dims} in ggml order (innermost first). */
    public GgufWriter addTensor(String name, long[] dims, GgmlType type, MemorySegment data) {
        long bytes = checkTensor(name, dims, type);
        if (data.byteSize() != bytes)
            throw new IllegalArgumentException("tensor '" + name + "': " + data.byteSize() + " bytes of data, but " + type + " "
                    + Arrays.toString(dims) + " takes " + bytes);
        names.add(name);
        tensors.add(new Tensor(name, dims.clone(), type, bytes, data, null));
        return this;
    }

    /**
     * Adds a tensor whose bytes {@code fill} writes, when {@link #write} runs, straight into the file's slice for it
     * (exactly the tensor's size, zeroed): a model larger than memory is written one tensor at a time. {@code fill}
     * may write from several threads.
     */
    public GgufWriter addTensor(String name, long[] dims, GgmlType type, Consumer<MemorySegment> fill) {
        long bytes = checkTensor(name, dims, type);
        names.add(name);
        tensors.add(new Tensor(name, dims.clone(), type, bytes, null, Objects.requireNonNull(fill, "fill")));
        return this;
    }

    /** Checks a new tensor's name and shape; returns its size in bytes. */
    private long checkTensor(String name, long[] dims, GgmlType type) {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("empty tensor name");
        String t = "tensor '" + name + "'";
        if (utf8(name, t).length > MAX_NAME_BYTES)
            throw new IllegalArgumentException(t + ": name longer than " + MAX_NAME_BYTES + " UTF-8 bytes (llama.cpp's limit)");
        if (names.contains(name)) throw new IllegalArgumentException("duplicate " + t);
        if (dims.length < 1 || dims.length > 4) throw new IllegalArgumentException(t + ": " + dims.length + " dimensions; a tensor has 1 to 4");
        for (int i = 0; i < dims.length; i++)
            if (dims[i] < 1) throw new IllegalArgumentException(t + ": dimension " + i + " is " + dims[i] + ", must be at least 1");
        if (dims[0] % type.blockSize != 0)
            throw new IllegalArgumentException(t + ": innermost dimension " + dims[0] + " is not a whole number of " + type
                    + " blocks of " + type.blockSize + " weights");
        try {
            long n = 1;
            for (long d : dims) n = Math.multiplyExact(n, d);
            return Math.multiplyExact(n / type.blockSize, (long) type.blockBytes);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(t + ": " + type + " " + Arrays.toString(dims) + " takes more than " + Long.MAX_VALUE + " bytes");
        }
    }

    /** The metadata and tensor infos as written: everything before the padding to the data section. */
    byte[] header() {
        Out out = new Out();
        out.write(new byte[]{'G', 'G', 'U', 'F'}, 0, 4);
        out.i32(3);
        out.i64(tensors.size());
        out.i64(kv.size());
        for (byte[] e : kv.values()) out.write(e, 0, e.length);  // key, type, value
        long offset = 0;
        for (Tensor t : tensors) {
            out.string(utf8(t.name, "tensor"));
            out.i32(t.dims.length);
            for (long d : t.dims) out.i64(d);
            out.i32(t.type.id);
            out.i64(offset);
            offset += pad(t.bytes);
        }
        return out.toByteArray();
    }

    private long pad(long n) { return (n + alignment - 1) & -alignment; }

    /** The size of the file {@link #write} makes. */
    public long fileSize() { return fileSize(header().length); }

    private long fileSize(long n) {
        if (tensors.isEmpty()) return n;
        n = pad(n);
        for (Tensor t : tensors) n += pad(t.bytes);
        return n;
    }

    /** Writes the file (to a temporary file first, moved into place when complete). */
    public void write(Path file) {
        byte[] header = header();
        long total = fileSize(header.length);
        Path tmp = file.toAbsolutePath().resolveSibling(file.getFileName() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.READ, StandardOpenOption.WRITE);
                 Arena arena = Arena.ofShared()) {                                // shared: a fill may write from several threads
                MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
                MemorySegment.copy(header, 0, seg, ValueLayout.JAVA_BYTE, 0, header.length);
                long pos = pad(header.length);  // padding bytes of a fresh file are zero
                for (Tensor t : tensors) {
                    if (t.data != null) MemorySegment.copy(t.data, 0, seg, pos, t.bytes);
                    else t.fill.accept(seg.asSlice(pos, t.bytes));
                    pos += pad(t.bytes);
                }
                seg.force();
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        }
    }

    private static void deleteQuietly(Path p) {
        try { Files.deleteIfExists(p); } catch (IOException ignored) { /* best effort */ }
    }

    /** Encodes {@code v}; {@code index} ≥ 0 when it is element {@code index} of {@code array}. */
    private static void encode(Out out, GgufValueType type, Object v, String array, int index, int depth) {
        String what = index < 0 ? array : array + "[" + index + "]";
        switch (type) {
            case STRING -> out.string(utf8(as(String.class, v, type, what), what));
            case BOOL -> out.write(as(Boolean.class, v, type, what) ? 1 : 0);
            case FLOAT32 -> {
                double d = floating(v, type, what);
                float f = (float) d;
                if (Float.isInfinite(f) && !Double.isInfinite(d)) throw new IllegalArgumentException(what + ": " + d + " is out of the f32 range");
                out.i32(Float.floatToRawIntBits(f));
            }
            case FLOAT64 -> out.i64(Double.doubleToRawLongBits(floating(v, type, what)));
            case ARRAY -> array(out, v, what, depth);
            default -> {
                long x = integer(v, type, what);
                for (int i = 0; i < type.size; i++) out.write((int) (x >>> (8 * i)));
            }
        }
    }

    private static void array(Out out, Object v, String what, int depth) {
        GgufValueType et;
        List<?> items;
        if (v instanceof Array a) { et = a.elementType(); items = a.items(); }
        else if (v instanceof GgufArray g) { et = g.elementType(); items = g; }
        else throw new IllegalArgumentException(what + ": arr takes a GgufWriter.Array or GgufArray, not " + typeName(v));
        if (depth + 1 > GgufCursor.MAX_DEPTH) throw new IllegalArgumentException(what + ": arrays nested more than " + GgufCursor.MAX_DEPTH + " deep");
        if (items.size() > GgufCursor.MAX_ARRAY_LENGTH) throw new IllegalArgumentException(what + ": more than " + GgufCursor.MAX_ARRAY_LENGTH + " elements");
        out.i32(et.id);
        out.i64(items.size());
        for (int i = 0; i < items.size(); i++) encode(out, et, items.get(i), what, i, depth + 1);
    }

    private static <T> T as(Class<T> c, Object v, GgufValueType type, String what) {
        if (!c.isInstance(v)) throw new IllegalArgumentException(what + ": " + type.label + " takes a " + c.getSimpleName() + ", not " + typeName(v));
        return c.cast(v);
    }

    private static double floating(Object v, GgufValueType type, String what) {
        if (v instanceof Double || v instanceof Float) return ((Number) v).doubleValue();
        throw new IllegalArgumentException(what + ": " + type.label + " takes a Double or Float, not " + typeName(v));
    }

    private static long integer(Object v, GgufValueType type, String what) {
        if (!(v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte))
            throw new IllegalArgumentException(what + ": " + type.label + " takes a Long or Integer, not " + typeName(v));
        long x = ((Number) v).longValue();
        long min = 0, max = switch (type) {
            case UINT8 -> 0xFF;
            case UINT16 -> 0xFFFF;
            case UINT32 -> 0xFFFF_FFFFL;
            case UINT64 -> Long.MAX_VALUE;
            default -> {
                min = -1L << (8 * type.size - 1);
                yield ~min;
            }
        };
        if (x < min || x > max) throw new IllegalArgumentException(what + ": " + x + " is out of the " + type.label + " range [" + min + ", " + max + "]");
        return x;
    }

    private static String typeName(Object v) { return v == null ? "null" : v.getClass().getSimpleName(); }

    private static byte[] utf8(String s, String what) {
        try {
            ByteBuffer b = StandardCharsets.UTF_8.newEncoder().encode(CharBuffer.wrap(s));
            return Arrays.copyOf(b.array(), b.limit());
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(what + ": string is not valid Unicode (unpaired surrogate)", e);
        }
    }

    /** A little-endian byte buffer. */
    private static final class Out extends ByteArrayOutputStream {
        void i32(int v) { for (int i = 0; i < 4; i++) write(v >>> (8 * i)); }

        void i64(long v) { for (int i = 0; i < 8; i++) write((int) (v >>> (8 * i))); }

        void string(byte[] utf8) {
            i64(utf8.length);
            write(utf8, 0, utf8.length);
        }
    }
}
