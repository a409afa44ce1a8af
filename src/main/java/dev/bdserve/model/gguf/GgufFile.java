package dev.bdserve.model.gguf;

import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.io.MappedFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A strict reader of GGUF files (llama.cpp's model format), versions 2 and 3, little-endian. The file is
 * memory-mapped in a shared {@link Arena}; {@link #close()} unmaps it, after which {@link #data} slices are gone
 * (metadata and tensor infos stay valid).
 *
 * <p>Metadata values read as {@link Long} (every integer type; a u64 above {@link Long#MAX_VALUE} is refused),
 * {@link Double} (f32 widened exactly, f64), {@link Boolean}, {@link String} (UTF-8) and, for arrays, an
 * unmodifiable {@code List<Object>} of those (a {@link GgufArray}, which also tells the element type).
 *
 * <p>Every malformation fails with one {@link ModelFormatException} naming the file and the key or tensor: a
 * truncation anywhere, a wrong magic, big-endian files, versions other than 2 and 3, counts and lengths that
 * cannot fit in the file, duplicate or empty keys and tensor names, unknown value types, invalid UTF-8, bool
 * bytes other than 0 and 1, an alignment that is not a u32 power of two, tensors with 0 or more than 4 dims, a
 * dim below 1, a ggml type bdserve does not read, an innermost dim that is not a whole number of blocks, an
 * unaligned offset, data past the end of the file, and two tensors whose bytes overlap. Unlike llama.cpp, 0-dim
 * and empty tensors are refused, while tensor data may come in any order and with gaps (as gguf-py reads it), and
 * tensor names are not limited to 63 bytes.
 */
public final class GgufFile implements AutoCloseable {
    /** The alignment of tensor data when {@code general.alignment} is absent. */
    public static final int DEFAULT_ALIGNMENT = 32;
    /** The metadata key of a custom alignment (a u32). */
    public static final String ALIGNMENT_KEY = "general.alignment";
    static final int HEADER_BYTES = 24;
    private static final long MIN_KV_BYTES = 8 + 1 + 4 + 1;            // key length, 1-byte key, type, 1-byte value
    private static final long MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;  // name length, name, 1 dim, type, offset
    private static final int MAX_DIMS = 4;

    /**
     * A tensor of the file.
     *
     * @param dims     dimensions in ggml order, innermost (contiguous) first, as stored
     * @param offset   absolute byte offset of the data in the file
     * @param byteSize bytes of data
     */
    public record TensorInfo(String name, long[] dims, GgmlType type, long offset, long byteSize) {
        public TensorInfo {
            dims = dims.clone();
        }

        @Override public long[] dims() { return dims.clone(); }

        /** Number of weights (product of the dims). */
        public long elements() {
            long n = 1;
            for (long d : dims) n *= d;
            return n;
        }

        @Override public boolean equals(Object o) {
            return o instanceof TensorInfo t && name.equals(t.name) && Arrays.equals(dims, t.dims) && type == t.type
                    && offset == t.offset && byteSize == t.byteSize;
        }

        @Override public int hashCode() { return name.hashCode() * 31 + Arrays.hashCode(dims); }

        @Override public String toString() {
            return "TensorInfo[" + name + " " + type + " " + Arrays.toString(dims) + " @" + offset + "+" + byteSize + "]";
        }
    }

    private final Path path;
    private final String label;
    private final Arena arena;
    private final MemorySegment file;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, GgufValueType> types;
    private final long alignment;
    private final long dataStart;
    private final List<TensorInfo> tensors;
    private final Map<String, TensorInfo> byName;

    private GgufFile(Path path, Arena arena, MemorySegment file, int version, Map<String, Object> metadata,
                     Map<String, GgufValueType> types, long alignment, long dataStart, List<TensorInfo> tensors) {
        this.path = path;
        this.label = path.toString();
        this.arena = arena;
        this.file = file;
        this.version = version;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.types = types;
        this.alignment = alignment;
        this.dataStart = dataStart;
        this.tensors = Collections.unmodifiableList(tensors);
        this.byName = new HashMap<>();
        for (TensorInfo t : tensors) byName.put(t.name(), t);
    }

    /** Maps and validates a GGUF file. */
    public static GgufFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg = MappedFile.map(path, arena, HEADER_BYTES, "the " + HEADER_BYTES + "-byte GGUF header");
            GgufCursor c = new GgufCursor(seg, path.toString());
            int version = header(seg, c);
            long nTensors = c.i64("tensor count"), nKv = c.i64("key/value count");
            long rest = c.remaining();
            if (nTensors < 0 || nTensors > rest / MIN_TENSOR_INFO_BYTES)
                throw c.fail("tensor count " + Long.toUnsignedString(nTensors) + " cannot fit: each tensor info takes at least "
                        + MIN_TENSOR_INFO_BYTES + " bytes and only " + rest + " follow the header (corrupt count or truncated file?)");
            if (nKv < 0 || nKv > rest / MIN_KV_BYTES)
                throw c.fail("key/value count " + Long.toUnsignedString(nKv) + " cannot fit: each key/value pair takes at least "
                        + MIN_KV_BYTES + " bytes and only " + rest + " follow the header (corrupt count or truncated file?)");
            Map<String, Object> meta = new LinkedHashMap<>();
            Map<String, GgufValueType> types = new HashMap<>();
            for (long i = 0; i < nKv; i++) readKeyValue(c, i, meta, types);
            long alignment = alignment(c, meta, types);
            List<TensorInfo> infos = new ArrayList<>();
            List<Long> offsets = new ArrayList<>();
            Set<String> names = new HashSet<>();
            for (long i = 0; i < nTensors; i++) infos.add(readTensorInfo(c, i, names, offsets));
            // llama.cpp pads to the alignment only when there are tensors
            long dataStart = nTensors == 0 ? c.pos : (c.pos + alignment - 1) & -alignment;
            List<TensorInfo> placed = place(c, infos, offsets, alignment, dataStart);
            return new GgufFile(path, arena, seg, version, meta, types, alignment, dataStart, placed);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static int header(MemorySegment seg, GgufCursor c) {
        byte[] magic = seg.asSlice(0, 4).toArray(ValueLayout.JAVA_BYTE);
        if (!Arrays.equals(magic, new byte[]{'G', 'G', 'U', 'F'}))
            throw c.fail("not a GGUF file: magic is '" + printable(magic) + "', expected 'GGUF'");
        c.pos = 4;
        int v = c.i32("version");
        if (v != 0 && (v & 0xFFFF) == 0)
            throw c.fail("big-endian GGUF (version " + Integer.reverseBytes(v) + " byte-swapped) is not supported; bdserve reads little-endian GGUF");
        if (v == 1) throw c.fail("GGUF version 1 is not supported; bdserve reads versions 2 and 3 (convert the model again)");
        if (v != 2 && v != 3) throw c.fail("unsupported GGUF version " + Integer.toUnsignedString(v) + "; bdserve reads versions 2 and 3");
        return v;
    }

    private static String printable(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(x >= 0x20 && x < 0x7F ? String.valueOf((char) x) : String.format("\\x%02X", x & 0xFF));
        return s.toString();
    }

    private static void readKeyValue(GgufCursor c, long i, Map<String, Object> meta, Map<String, GgufValueType> types) {
        c.where = "key #" + i;
        String key = c.string("key", -1);
        if (key.isEmpty()) throw c.fail("empty key");
        if (meta.containsKey(key)) throw c.fail("duplicate key '" + key + "'");
        c.where = "key '" + key + "'";
        int typeId = c.i32("value type");
        GgufValueType t = GgufValueType.ofId(typeId);
        if (t == null) throw c.fail("unknown value type " + typeId + " (GGUF value types are 0 to 12)");
        meta.put(key, c.value(t, "value", 0));
        types.put(key, t);
    }

    private static long alignment(GgufCursor c, Map<String, Object> meta, Map<String, GgufValueType> types) {
        GgufValueType t = types.get(ALIGNMENT_KEY);
        if (t == null) return DEFAULT_ALIGNMENT;
        c.where = "key '" + ALIGNMENT_KEY + "'";
        if (t != GgufValueType.UINT32) throw c.fail("the alignment is " + t.label + ", must be u32");
        long a = (Long) meta.get(ALIGNMENT_KEY);
        if (a == 0 || (a & (a - 1)) != 0) throw c.fail("the alignment " + a + " is not a power of two");
        return a;
    }

    /** Reads one tensor info, with its offset relative to the data section (placed later). */
    private static TensorInfo readTensorInfo(GgufCursor c, long i, Set<String> names, List<Long> offsets) {
        c.where = "tensor #" + i;
        String name = c.string("name", -1);
        if (name.isEmpty()) throw c.fail("empty name");
        if (!names.add(name)) throw c.fail("duplicate tensor name '" + name + "'");
        c.where = "tensor '" + name + "'";
        long nDims = c.u32("dimension count");
        if (nDims < 1 || nDims > MAX_DIMS) throw c.fail(nDims + " dimensions; a tensor has 1 to " + MAX_DIMS);
        long[] dims = new long[(int) nDims];
        long elements = 1;
        for (int j = 0; j < nDims; j++) {
            dims[j] = c.i64("dimension " + j);
            if (dims[j] < 1) throw c.fail("dimension " + j + " is " + dims[j] + ", must be at least 1");
        }
        int typeId = c.i32("type");
        try {
            for (long d : dims) elements = Math.multiplyExact(elements, d);
        } catch (ArithmeticException e) {
            throw c.fail("shape " + Arrays.toString(dims) + " has more than " + Long.MAX_VALUE + " elements");
        }
        GgmlType type = GgmlType.ofId(typeId);
        if (type == null) throw c.fail("ggml type " + typeId + " (" + GgmlTypeNames.name(typeId) + ") is not supported; bdserve reads "
                + GgmlTypeNames.supported());
        if (dims[0] % type.blockSize != 0)
            throw c.fail("innermost dimension " + dims[0] + " is not a whole number of " + type + " blocks of " + type.blockSize + " weights");
        long bytes;
        try {
            bytes = Math.multiplyExact(elements / type.blockSize, type.blockBytes);
        } catch (ArithmeticException e) {
            throw c.fail("shape " + Arrays.toString(dims) + " of " + type + " takes more than " + Long.MAX_VALUE + " bytes");
        }
        offsets.add(c.i64("data offset"));
        return new TensorInfo(name, dims, type, 0, bytes);
    }

    /** Checks alignment, bounds and overlap; returns the infos with absolute offsets. */
    private static List<TensorInfo> place(GgufCursor c, List<TensorInfo> infos, List<Long> offsets, long alignment, long dataStart) {
        long size = c.size(), avail = size - dataStart;
        List<TensorInfo> placed = new ArrayList<>(infos.size());
        for (int i = 0; i < infos.size(); i++) {
            TensorInfo t = infos.get(i);
            long off = offsets.get(i);
            c.where = "tensor '" + t.name() + "'";
            if (Long.remainderUnsigned(off, alignment) != 0)
                throw c.fail("data offset " + Long.toUnsignedString(off) + " is not a multiple of the alignment " + alignment);
            if (off < 0 || avail < 0 || off > avail || t.byteSize() > avail - off) {
                BigInteger from = BigInteger.valueOf(dataStart).add(new BigInteger(Long.toUnsignedString(off)));
                throw c.fail("data (" + t.byteSize() + " bytes at offset " + from + ") runs past the end of the file ("
                        + size + " bytes; truncated?)");
            }
            placed.add(new TensorInfo(t.name(), t.dims, t.type(), dataStart + off, t.byteSize()));
        }
        List<TensorInfo> sorted = new ArrayList<>(placed);
        sorted.sort(Comparator.comparingLong(TensorInfo::offset));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo a = sorted.get(i - 1), b = sorted.get(i);
            if (a.offset() + a.byteSize() > b.offset()) {
                c.where = "tensor '" + b.name() + "'";
                throw c.fail("data (bytes " + range(b) + ") overlaps tensor '" + a.name() + "' (bytes " + range(a) + ")");
            }
        }
        return placed;
    }

    private static String range(TensorInfo t) { return t.offset() + " to " + (t.offset() + t.byteSize()); }

    public Path path() { return path; }

    /** The GGUF version, 2 or 3. */
    public int version() { return version; }

    /** The alignment of tensor data: {@code general.alignment} or {@value #DEFAULT_ALIGNMENT}. */
    public long alignment() { return alignment; }

    /** Where the tensor data section starts (aligned when there are tensors). */
    public long dataStart() { return dataStart; }

    public long fileSize() { return file.byteSize(); }

    /** All metadata, in file order; unmodifiable. */
    public Map<String, Object> metadata() { return metadata; }

    public boolean has(String key) { return metadata.containsKey(key); }

    /** The stored type of a key's value ({@link GgufValueType#ARRAY} for arrays). */
    public GgufValueType valueType(String key) {
        GgufValueType t = types.get(key);
        if (t == null) throw missing(key);
        return t;
    }

    public String string(String key) { return get(key, String.class, "a string"); }

    public String string(String key, String defaultValue) { return has(key) ? string(key) : defaultValue; }

    /** Any integer type. */
    public long longValue(String key) { return get(key, Long.class, "an integer"); }

    public long longValue(String key, long defaultValue) { return has(key) ? longValue(key) : defaultValue; }

    /** f32 or f64. */
    public double doubleValue(String key) { return get(key, Double.class, "a float"); }

    public double doubleValue(String key, double defaultValue) { return has(key) ? doubleValue(key) : defaultValue; }

    public boolean bool(String key) { return get(key, Boolean.class, "a bool"); }

    public boolean bool(String key, boolean defaultValue) { return has(key) ? bool(key) : defaultValue; }

    /** An array value; it is a {@link GgufArray}. */
    @SuppressWarnings("unchecked")
    public List<Object> list(String key) { return get(key, List.class, "an array"); }

    public List<Object> list(String key, List<Object> defaultValue) { return has(key) ? list(key) : defaultValue; }

    private <T> T get(String key, Class<T> type, String expected) {
        Object v = metadata.get(key);
        if (v == null) throw missing(key);
        if (!type.isInstance(v))
            throw new ModelFormatException(label + ": metadata key '" + key + "' is " + types.get(key).label + ", expected " + expected);
        return type.cast(v);
    }

    private ModelFormatException missing(String key) {
        return new ModelFormatException(label + ": metadata key '" + key + "' is missing");
    }

    /** The tensors in file order; unmodifiable. */
    public List<TensorInfo> tensors() { return tensors; }

    public boolean hasTensor(String name) { return byName.containsKey(name); }

    public TensorInfo tensor(String name) {
        TensorInfo t = byName.get(name);
        if (t == null) throw new ModelFormatException(label + ": no tensor '" + name + "'");
        return t;
    }

    /** The bytes of a tensor of this file: a read-only slice of the mapping, valid until {@link #close()}. */
    public MemorySegment data(TensorInfo t) {
        if (!t.equals(byName.get(t.name()))) throw new IllegalArgumentException(t + " is not a tensor of " + label);
        return file.asSlice(t.offset(), t.byteSize());
    }

    private java.nio.channels.FileChannel channel;   // opened by the first read(); closed with the file

    /**
     * Copies {@code len} bytes at {@code offset} inside tensor {@code t} into {@code dst} by reading the file (through
     * the page cache) rather than the mapping: weights loaded onto the heap are then held once by the process, not a
     * second time as mapped pages that count in its resident set.
     */
    public void read(TensorInfo t, long offset, byte[] dst, int dstOff, int len) {
        if (!t.equals(byName.get(t.name()))) throw new IllegalArgumentException(t + " is not a tensor of " + label);
        if (offset < 0 || len < 0 || offset + len > t.byteSize())
            throw new IllegalArgumentException("bytes [" + offset + ", " + (offset + len) + ") outside tensor " + t.name() + " of " + t.byteSize());
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(dst, dstOff, len);
        long pos = t.offset() + offset;
        try {
            java.nio.channels.FileChannel ch;
            synchronized (this) {
                if (channel == null) channel = java.nio.channels.FileChannel.open(path, java.nio.file.StandardOpenOption.READ);
                ch = channel;
            }
            while (bb.hasRemaining()) {
                int n = ch.read(bb, pos);
                if (n < 0) throw new ModelFormatException(label + ": tensor " + t.name() + " ends past the end of the file");
                pos += n;
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot read tensor " + t.name() + " of " + label + ": " + e.getMessage(), e);
        }
    }

    /** Unmaps the file. */
    @Override public void close() {
        synchronized (this) {
            if (channel != null) try { channel.close(); } catch (java.io.IOException ignored) { /* read-only */ }
        }
        arena.close();
    }

    @Override public String toString() {
        return "GgufFile[" + label + ", v" + version + ", " + metadata.size() + " keys, " + tensors.size() + " tensors]";
    }
}
