package dev.bdserve.model.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Numerics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
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
import java.util.function.Supplier;

/**
 * Writes a safetensors file: tensors in the order added, header padded with spaces to a multiple of 8
 * bytes, optional "__metadata__". Tensors may be given eagerly or lazily (a supplier called once, at
 * write time, so a multi-GB model is written one tensor at a time). The file is written through a
 * mapped {@link MemorySegment}, to a temporary file moved into place when complete.
 */
public final class SafetensorsWriter {
    @FunctionalInterface
    private interface Body { void write(MemorySegment dst, long offset); }

    private record Entry(String name, String dtypeName, long[] shape, long bytes, Body body) {}

    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final List<Entry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(Objects.requireNonNull(key), Objects.requireNonNull(value));
        return this;
    }

    public SafetensorsWriter metadata(Map<String, String> m) {
        m.forEach(this::metadata);
        return this;
    }

    /** A matrix [rows, cols] in its own dtype. */
    public SafetensorsWriter add(String name, Matrix m) {
        return addMatrix(name, m.dtype(), m.rows(), m.cols(), () -> m);
    }

    /** A 1-D tensor [data.length], converted to {@code dtype}. */
    public SafetensorsWriter add(String name, DType dtype, float[] data) {
        float[] copy = data.clone();
        return addVector(name, dtype, copy.length, () -> copy);
    }

    /**
     * A matrix [rows, cols] stored as {@code dtype}, produced by {@code supplier} only when the file is
     * written; a supplied matrix of another dtype is converted (round-to-nearest-even) row by row.
     */
    public SafetensorsWriter addMatrix(String name, DType dtype, int rows, int cols, Supplier<Matrix> supplier) {
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("tensor '" + name + "': shape must be positive");
        return add(new Entry(name, dtype.safetensorsName(), new long[]{rows, cols}, (long) rows * cols * dtype.bytes(),
                (dst, off) -> writeMatrix(name, supplier.get(), dtype, rows, cols, dst, off)));
    }

    /** A 1-D tensor [n] stored as {@code dtype}, produced lazily by {@code supplier}. */
    public SafetensorsWriter addVector(String name, DType dtype, int n, Supplier<float[]> supplier) {
        if (n < 0) throw new IllegalArgumentException("tensor '" + name + "': negative length");
        return add(new Entry(name, dtype.safetensorsName(), new long[]{n}, (long) n * dtype.bytes(), (dst, off) -> {
            float[] v = supplier.get();
            if (v.length != n) throw new IllegalArgumentException("tensor '" + name + "': supplier gave " + v.length + " values, declared " + n);
            writeFloats(v, 0, n, dtype, dst, off);
        }));
    }

    /**
     * Raw little-endian bytes with any dtype name (e.g. "I64", "U8"); the size must equal
     * product(shape) × element size.
     */
    public SafetensorsWriter addRaw(String name, String dtypeName, long[] shape, byte[] data) {
        int eb = Safetensors.elementBytes(dtypeName);
        if (eb <= 0) throw new IllegalArgumentException("tensor '" + name + "': unknown dtype " + dtypeName);
        long n = eb;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("tensor '" + name + "': negative dimension");
            n = Math.multiplyExact(n, d);
        }
        if (n != data.length)
            throw new IllegalArgumentException("tensor '" + name + "': " + data.length + " bytes, shape needs " + n);
        byte[] copy = data.clone();
        return add(new Entry(name, dtypeName, shape.clone(), n,
                (dst, off) -> MemorySegment.copy(copy, 0, dst, ValueLayout.JAVA_BYTE, off, copy.length)));
    }

    private SafetensorsWriter add(Entry e) {
        if (e.name.equals(Safetensors.METADATA_KEY)) throw new IllegalArgumentException("'__metadata__' is not a tensor name");
        if (!names.add(e.name)) throw new IllegalArgumentException("duplicate tensor '" + e.name + "'");
        entries.add(e);
        return this;
    }

    /** Number of tensors added. */
    public int size() { return entries.size(); }

    /** Bytes of tensor data (excluding the header). */
    public long dataBytes() {
        long n = 0;
        for (Entry e : entries) n += e.bytes;
        return n;
    }

    /** The padded JSON header. */
    byte[] header() {
        Map<String, Object> h = new LinkedHashMap<>();
        if (!metadata.isEmpty()) h.put(Safetensors.METADATA_KEY, metadata);
        long pos = 0;
        for (Entry e : entries) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("dtype", e.dtypeName);
            t.put("shape", e.shape);
            t.put("data_offsets", new long[]{pos, pos + e.bytes});
            h.put(e.name, t);
            pos += e.bytes;
        }
        byte[] json;
        try {
            json = new ObjectMapper().writeValueAsBytes(h);
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException(ex);
        }
        int padded = (json.length + 7) & ~7;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** Writes the file (replacing an existing one only once the new one is complete). */
    public void write(Path file) {
        byte[] header = header();
        long total = 8 + header.length + dataBytes();
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = dir.resolve(file.getFileName() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.READ, StandardOpenOption.WRITE);
                 Arena arena = Arena.ofConfined()) {
                MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
                seg.set(Safetensors.I64_LE, 0, header.length);
                MemorySegment.copy(header, 0, seg, ValueLayout.JAVA_BYTE, 8, header.length);
                long pos = 8 + header.length;
                for (Entry e : entries) {
                    e.body.write(seg, pos);
                    pos += e.bytes;
                }
                seg.force();
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException ex) {
            deleteQuietly(tmp);
            throw new UncheckedIOException("cannot write " + file + ": " + ex.getMessage(), ex);
        } catch (RuntimeException ex) {
            deleteQuietly(tmp);
            throw ex;
        }
    }

    private static void deleteQuietly(Path p) {
        try { Files.deleteIfExists(p); } catch (IOException ignored) { /* best effort */ }
    }

    private static void writeMatrix(String name, Matrix m, DType dtype, int rows, int cols, MemorySegment dst, long off) {
        if (m.rows() != rows || m.cols() != cols)
            throw new IllegalArgumentException("tensor '" + name + "': supplied " + m + ", declared " + rows + "x" + cols);
        if (m.dtype() == dtype) {
            int n = rows * cols;
            if (dtype == DType.F32) MemorySegment.copy(m.f32(), 0, dst, Safetensors.F32_LE, off, n);
            else MemorySegment.copy(m.bits(), 0, dst, Safetensors.I16_LE, off, n);
            return;
        }
        float[] row = new float[cols];
        long stride = (long) cols * dtype.bytes();
        for (int r = 0; r < rows; r++) {
            m.row(r, row, 0);
            writeFloats(row, 0, cols, dtype, dst, off + r * stride);
        }
    }

    private static void writeFloats(float[] v, int from, int n, DType dtype, MemorySegment dst, long off) {
        if (dtype == DType.F32) {
            MemorySegment.copy(v, from, dst, Safetensors.F32_LE, off, n);
            return;
        }
        final int chunk = 1 << 16;
        short[] buf = new short[Math.min(n, chunk)];
        for (int start = 0; start < n; start += chunk) {
            int len = Math.min(chunk, n - start);
            for (int i = 0; i < len; i++) {
                float x = v[from + start + i];
                buf[i] = dtype == DType.BF16 ? Numerics.floatToBf16(x) : Float.floatToFloat16(x);
            }
            MemorySegment.copy(buf, 0, dst, Safetensors.I16_LE, off + (long) start * 2, len);
        }
    }
}
