package dev.bdserve.model.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Numerics;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict safetensors reader. The file is memory-mapped into a {@link MemorySegment} owned by a shared
 * {@link Arena} (so several threads may read shards concurrently); {@link #close()} unmaps it.
 *
 * <p>Checks, each failing with its own {@link ModelFormatException} naming the file (and tensor):
 * file at least 8 bytes; header length N at most {@value #MAX_HEADER_BYTES} bytes and within the file;
 * header is UTF-8 JSON, an object starting with '{' (trailing spaces allowed); every entry has a string
 * dtype, a shape of non-negative integers and data_offsets [begin, end] with begin ≤ end; the optional
 * "__metadata__" maps strings to strings; end − begin = product(shape) × element size; the offsets tile
 * the data section with no hole and no overlap; the file length is exactly 8 + N + the data size.
 *
 * <p>Dtypes we do not compute with (I64, U8, F64, ...) are accepted when their sizes check out, but
 * reading them as numbers fails with a clear message.
 */
public final class Safetensors implements AutoCloseable {
    /** The largest header accepted (the reference implementation's limit). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    static final String METADATA_KEY = "__metadata__";

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * One header entry.
     *
     * @param name      tensor name
     * @param dtypeName the dtype string as written ("F32", "BF16", "I64", ...)
     * @param dtype     the compute dtype, or null when the tensor's dtype is not F32/BF16/F16
     * @param shape     dimensions (empty for a scalar)
     * @param begin     start offset relative to the data section
     * @param end       end offset (exclusive) relative to the data section
     */
    public record TensorInfo(String name, String dtypeName, DType dtype, long[] shape, long begin, long end) {
        public TensorInfo {
            shape = shape.clone();
        }

        @Override public long[] shape() { return shape.clone(); }

        /** Number of elements (1 for a scalar). */
        public long elements() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        public long byteSize() { return end - begin; }

        @Override public boolean equals(Object o) {
            return o instanceof TensorInfo t && name.equals(t.name) && dtypeName.equals(t.dtypeName)
                    && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end;
        }

        @Override public int hashCode() { return name.hashCode() * 31 + Arrays.hashCode(shape); }

        @Override public String toString() {
            return "TensorInfo[" + name + " " + dtypeName + " " + Arrays.toString(shape) + " @" + begin + ".." + end + "]";
        }
    }

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_INTEGER_FOR_INTS)
            .build();

    private final Path path;
    private final String label;
    private final Arena arena;
    private final MemorySegment file;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private Safetensors(Path path, Arena arena, MemorySegment file, long dataStart,
                        Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.label = path.toString();
        this.arena = arena;
        this.file = file;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Opens and validates a safetensors file. */
    public static Safetensors open(Path path) {
        String f = path.toString();
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg = MappedFile.map(path, arena, 8, "the 8-byte safetensors header length");
            long n = seg.get(I64_LE, 0);
            long size = seg.byteSize();
            if (n < 0 || n > MAX_HEADER_BYTES)
                throw new ModelFormatException(f + ": header length " + Long.toUnsignedString(n) + " exceeds the "
                        + MAX_HEADER_BYTES + "-byte limit (not a safetensors file?)");
            if (8 + n > size)
                throw new ModelFormatException(f + ": header length " + n + " extends beyond the end of the file ("
                        + size + " bytes; truncated?)");
            byte[] hb = seg.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
            Map<String, String> meta = new LinkedHashMap<>();
            Map<String, TensorInfo> infos = parseHeader(f, hb, meta);
            checkLayout(f, infos, size - 8 - n, size, n);
            return new Safetensors(path, arena, seg, 8 + n, Collections.unmodifiableMap(infos), Collections.unmodifiableMap(meta));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, TensorInfo> parseHeader(String f, byte[] hb, Map<String, String> meta) {
        String text = new String(hb, StandardCharsets.UTF_8);
        // Java replaces malformed input with U+FFFD; a lossless round trip proves the bytes were valid UTF-8.
        if (!Arrays.equals(text.getBytes(StandardCharsets.UTF_8), hb))
            throw new ModelFormatException(f + ": header is not valid UTF-8");
        int len = text.length();
        while (len > 0 && text.charAt(len - 1) == ' ') len--;
        text = text.substring(0, len);
        if (text.isEmpty() || text.charAt(0) != '{')
            throw new ModelFormatException(f + ": header does not start with '{' (a safetensors header is a JSON object)");
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(f + ": header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject())
            throw new ModelFormatException(f + ": header is not a JSON object");
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals(METADATA_KEY)) {
                if (v.isNull()) continue;
                if (!v.isObject()) throw new ModelFormatException(f + ": \"__metadata__\" must be an object of strings");
                for (Map.Entry<String, JsonNode> m : v.properties()) {
                    if (!m.getValue().isTextual())
                        throw new ModelFormatException(f + ": \"__metadata__\" value for key '" + m.getKey() + "' is not a string");
                    meta.put(m.getKey(), m.getValue().textValue());
                }
                continue;
            }
            infos.put(name, parseEntry(f, name, v));
        }
        return infos;
    }

    private static TensorInfo parseEntry(String f, String name, JsonNode v) {
        String t = f + ": tensor '" + name + "'";
        if (!v.isObject()) throw new ModelFormatException(t + ": entry is not a JSON object");
        JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
        if (dt == null) throw new ModelFormatException(t + ": missing \"dtype\"");
        if (!dt.isTextual()) throw new ModelFormatException(t + ": \"dtype\" is not a string");
        if (sh == null) throw new ModelFormatException(t + ": missing \"shape\"");
        if (off == null) throw new ModelFormatException(t + ": missing \"data_offsets\"");
        String dtypeName = dt.textValue();
        int elemBytes = elementBytes(dtypeName);
        if (elemBytes <= 0) throw new ModelFormatException(t + ": unknown dtype '" + dtypeName + "'");
        if (!sh.isArray()) throw new ModelFormatException(t + ": \"shape\" is not an array");
        long[] shape = new long[sh.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber())
                throw new ModelFormatException(t + ": shape " + sh + " has a non-integer dimension");
            if (d.bigIntegerValue().signum() < 0)
                throw new ModelFormatException(t + ": shape " + sh + " has a negative dimension");
            if (!d.canConvertToLong())
                throw new ModelFormatException(t + ": shape " + sh + " has a dimension out of range");
            shape[i] = d.longValue();
        }
        if (!off.isArray() || off.size() != 2)
            throw new ModelFormatException(t + ": \"data_offsets\" must be an array [begin, end], got " + off);
        long[] be = new long[2];
        for (int i = 0; i < 2; i++) {
            JsonNode d = off.get(i);
            if (!d.isIntegralNumber())
                throw new ModelFormatException(t + ": data_offsets " + off + " are not integers");
            if (d.bigIntegerValue().signum() < 0)
                throw new ModelFormatException(t + ": data_offsets " + off + " are negative");
            if (!d.canConvertToLong() || d.longValue() > Long.MAX_VALUE / 2)
                throw new ModelFormatException(t + ": data_offsets " + off + " are out of range");
            be[i] = d.longValue();
        }
        if (be[0] > be[1])
            throw new ModelFormatException(t + ": data_offsets [" + be[0] + ", " + be[1] + "] have begin > end");
        long expected;
        try {
            expected = elemBytes;
            for (long d : shape) expected = Math.multiplyExact(expected, d);
        } catch (ArithmeticException e) {
            throw new ModelFormatException(t + ": shape " + Arrays.toString(shape) + " × " + dtypeName + " overflows 64 bits");
        }
        if (be[1] - be[0] != expected)
            throw new ModelFormatException(t + " data_offsets [" + be[0] + ", " + be[1] + "] do not match shape "
                    + Arrays.toString(shape) + " × " + dtypeName + " = " + expected + " bytes");
        return new TensorInfo(name, dtypeName, DType.fromSafetensors(dtypeName), shape, be[0], be[1]);
    }

    private static void checkLayout(String f, Map<String, TensorInfo> infos, long dataLen, long fileLen, long n) {
        List<TensorInfo> sorted = new ArrayList<>(infos.values());
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long pos = 0;
        TensorInfo prev = null;
        for (TensorInfo ti : sorted) {
            if (ti.begin() < pos)
                throw new ModelFormatException(f + ": tensor '" + ti.name() + "' data_offsets [" + ti.begin() + ", " + ti.end()
                        + "] overlap tensor '" + prev.name() + "' [" + prev.begin() + ", " + prev.end() + "]");
            if (ti.begin() > pos)
                throw new ModelFormatException(f + ": hole in the data section: bytes [" + pos + ", " + ti.begin()
                        + ") belong to no tensor (before tensor '" + ti.name() + "')");
            pos = ti.end();
            if (ti.byteSize() > 0 || prev == null) prev = ti;
        }
        if (pos > dataLen)
            throw new ModelFormatException(f + ": file is truncated: tensor data ends at offset " + pos
                    + (prev != null ? " (tensor '" + prev.name() + "')" : "") + " but only " + dataLen
                    + " bytes follow the header; file is " + fileLen + " bytes, expected " + (8 + n + pos));
        if (pos < dataLen)
            throw new ModelFormatException(f + ": " + (dataLen - pos) + " bytes of trailing data after the last tensor; file is "
                    + fileLen + " bytes, expected 8 + " + n + " + " + pos + " = " + (8 + n + pos));
    }

    /** Bytes per element of a safetensors dtype name, or -1 if unknown. */
    public static int elementBytes(String dtypeName) {
        return switch (dtypeName) {
            case "F64", "I64", "U64", "C64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0" -> 1;
            default -> -1;
        };
    }

    /** The file this reader maps. */
    public Path path() { return path; }

    /** All tensors by name, in header order. */
    public Map<String, TensorInfo> tensors() { return tensors; }

    /** The "__metadata__" map (empty if absent). */
    public Map<String, String> metadata() { return metadata; }

    /** The entry for a tensor, or a {@link ModelFormatException} naming the file and tensor. */
    public TensorInfo info(String name) {
        TensorInfo ti = tensors.get(name);
        if (ti == null) throw new ModelFormatException(label + ": no tensor '" + name + "'");
        return ti;
    }

    /** The raw little-endian bytes of a tensor, as a read-only slice of the mapping (valid until close). */
    public MemorySegment bytes(String name) {
        TensorInfo ti = info(name);
        return file.asSlice(dataStart + ti.begin(), ti.byteSize()).asReadOnly();
    }

    private DType computeDtype(TensorInfo ti) {
        if (ti.dtype() == null)
            throw new ModelFormatException(label + ": tensor '" + ti.name() + "' has dtype " + ti.dtypeName()
                    + ", which cannot be read as numbers (supported: F32, BF16, F16)");
        return ti.dtype();
    }

    /**
     * Rows [rowFrom, rowTo) × columns [colFrom, colTo) of a 2-D tensor (a 1-D tensor is one row), copied
     * to heap storage in the tensor's own dtype.
     */
    public Matrix readMatrix(String name, int rowFrom, int rowTo, int colFrom, int colTo) {
        TensorInfo ti = info(name);
        DType dt = computeDtype(ti);
        long[] s = ti.shape;
        long rows, cols;
        if (s.length == 2) { rows = s[0]; cols = s[1]; }
        else if (s.length == 1) { rows = 1; cols = s[0]; }
        else throw new ModelFormatException(label + ": tensor '" + name + "' has shape " + Arrays.toString(s) + ", expected a 2-D matrix");
        if (rowFrom < 0 || rowTo > rows || rowFrom >= rowTo || colFrom < 0 || colTo > cols || colFrom >= colTo)
            throw new ModelFormatException(label + ": tensor '" + name + "' slice rows [" + rowFrom + ", " + rowTo
                    + ") cols [" + colFrom + ", " + colTo + ") is outside its shape " + Arrays.toString(s));
        int r = rowTo - rowFrom, c = colTo - colFrom;
        long count = (long) r * c;
        if (count > Integer.MAX_VALUE - 16)
            throw new ModelFormatException(label + ": tensor '" + name + "' slice of " + count + " elements is too large for one array");
        int eb = dt.bytes();
        long base = dataStart + ti.begin() + (rowFrom * cols + colFrom) * eb;
        long stride = cols * eb;
        boolean contiguous = c == cols;
        if (dt == DType.F32) {
            float[] out = new float[(int) count];
            if (contiguous) MemorySegment.copy(file, F32_LE, base, out, 0, (int) count);
            else for (int i = 0; i < r; i++) MemorySegment.copy(file, F32_LE, base + i * stride, out, i * c, c);
            return Matrix.ofF32(r, c, out);
        }
        short[] out = new short[(int) count];
        if (contiguous) MemorySegment.copy(file, I16_LE, base, out, 0, (int) count);
        else for (int i = 0; i < r; i++) MemorySegment.copy(file, I16_LE, base + i * stride, out, i * c, c);
        return Matrix.ofBits(dt, r, c, out);
    }

    /** A whole 2-D (or 1-D) tensor. */
    public Matrix readMatrix(String name) {
        long[] s = info(name).shape;
        if (s.length == 2 && s[0] <= Integer.MAX_VALUE && s[1] <= Integer.MAX_VALUE && s[0] > 0 && s[1] > 0)
            return readMatrix(name, 0, (int) s[0], 0, (int) s[1]);
        if (s.length == 1 && s[0] > 0 && s[0] <= Integer.MAX_VALUE) return readMatrix(name, 0, 1, 0, (int) s[0]);
        throw new ModelFormatException(label + ": tensor '" + name + "' has shape " + Arrays.toString(s) + ", expected a non-empty 2-D matrix");
    }

    /** All elements of an F32/BF16/F16 tensor of any rank, widened to fp32, row-major. */
    public float[] readFloats(String name) {
        TensorInfo ti = info(name);
        DType dt = computeDtype(ti);
        long n = ti.elements();
        if (n > Integer.MAX_VALUE - 16)
            throw new ModelFormatException(label + ": tensor '" + name + "' has " + n + " elements, too many for one array");
        long base = dataStart + ti.begin();
        float[] out = new float[(int) n];
        if (dt == DType.F32) {
            MemorySegment.copy(file, F32_LE, base, out, 0, (int) n);
            return out;
        }
        short[] bits = new short[(int) n];
        MemorySegment.copy(file, I16_LE, base, bits, 0, (int) n);
        if (dt == DType.BF16) for (int i = 0; i < bits.length; i++) out[i] = Numerics.bf16ToFloat(bits[i]);
        else for (int i = 0; i < bits.length; i++) out[i] = Float.float16ToFloat(bits[i]);
        return out;
    }

    /** Unmaps the file. Matrices already read stay valid; slices from {@link #bytes} do not. */
    @Override public void close() { if (arena.scope().isAlive()) arena.close(); }

    @Override public String toString() { return "Safetensors[" + label + ", " + tensors.size() + " tensors]"; }
}
