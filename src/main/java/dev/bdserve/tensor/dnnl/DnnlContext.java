package dev.bdserve.tensor.dnnl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One tensor-parallel rank's use of oneDNN: a stream, the bf16 matmul primitives it has needed (one per shape), and
 * the off-heap scratch the products go through (the bf16 activations, the fp32 results, a bf16 weight panel). Calls
 * run on the calling thread's OpenMP team of {@code threads} threads. Not thread-safe: one rank calls at a time, as
 * its forward pass does.
 *
 * <p>Two weight layouts are multiplied, both {@code dst[m, n] = Σ_k src[m, k] · w(k, n)} in fp32 from bf16 operands:
 * <ul>
 *   <li>{@link #rowMajor}: w stored [N, K] row-major (HF layout; oneDNN tag {@code ba} of dims {K, N});</li>
 *   <li>{@link #tiles}: w in oneDNN's {@code BA16a32b2a} layout of dims {K, N}: per 32 rows of the HF matrix, per 16
 *       columns, per column pair, the 32 rows each with its two columns side by side (what {@code
 *       Q8Matrix.tilesToBf16} writes). It is the blocked layout oneDNN's bf16 matmul works in, so it reads it without
 *       the reordering a row-major weight gets on every call.</li>
 * </ul>
 */
public final class DnnlContext implements AutoCloseable {
    /** Tokens are padded up to a multiple of this above it, so prefill chunks of any length share few primitives. */
    static final int M_ROUND = 16;

    private final LibDnnl lib;
    private final MemorySegment engine;
    private final int threads;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment stream;
    private final Map<Shape, Primitive> primitives = new HashMap<>();
    private final Map<String, MemorySegment> scratch = new HashMap<>();
    private final Map<String, float[]> heapScratch = new HashMap<>();
    private boolean closed;

    DnnlContext(Dnnl dnnl, int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be ≥ 1: " + threads);
        this.lib = dnnl.lib;
        this.engine = dnnl.engine;
        this.threads = threads;
        MemorySegment out = arena.allocate(ADDRESS);
        try {
            LibDnnl.check((int) lib.streamCreate.invokeExact(out, engine, LibDnnl.STREAM_DEFAULT_FLAGS), "dnnl_stream_create");
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        } catch (Throwable t) {
            arena.close();
            throw new IllegalStateException(t);
        }
        stream = out.get(ADDRESS, 0);
    }

    public int threads() { return threads; }

    /** Tokens a product of {@code m} tokens is computed for (the extra rows of src and dst are scratch). */
    static int paddedTokens(int m) { return m <= M_ROUND ? m : (m + M_ROUND - 1) / M_ROUND * M_ROUND; }

    /**
     * A scratch segment named {@code name} of at least {@code bytes} bytes, 64-byte aligned, kept and grown across
     * calls. Its contents are undefined.
     */
    public MemorySegment scratch(String name, long bytes) {
        MemorySegment s = scratch.get(name);
        if (s == null || s.byteSize() < bytes) {
            s = arena.allocate(Math.max(bytes, s == null ? 0 : s.byteSize() * 3 / 2), 64);
            scratch.put(name, s);
        }
        return s;
    }

    /** A heap scratch array named {@code name} of at least {@code floats} floats, kept and grown across calls. */
    float[] floats(String name, int floats) {
        float[] f = heapScratch.get(name);
        if (f == null || f.length < floats) {
            f = new float[Math.max(floats, f == null ? 0 : f.length * 3 / 2)];
            heapScratch.put(name, f);
        }
        return f;
    }

    /** Off-heap memory of {@code bytes} bytes, 64-byte aligned, that lives as long as this context. */
    MemorySegment allocate(long bytes) { return arena.allocate(bytes, 64); }

    /**
     * dst[m, n] (fp32, row stride {@code ldDst} floats) = src[m, :] (bf16 [M, K] row-major) · w[n, :] (bf16 [N, K]
     * row-major), for m &lt; M. src and dst must hold {@link #paddedTokens}(M) rows.
     */
    public void rowMajor(MemorySegment src, int M, int K, MemorySegment w, int N, MemorySegment dst, int ldDst) {
        run(new Shape(false, paddedTokens(M), K, N, ldDst), src, w, dst);
    }

    /** As {@link #rowMajor}, with w in the {@code BA16a32b2a} layout (N and K multiples of 32). */
    public void tiles(MemorySegment src, int M, int K, MemorySegment w, int N, MemorySegment dst, int ldDst) {
        if (N % 32 != 0 || K % 32 != 0)                      // its blocks are 32 x 32: other K would be padded
            throw new IllegalArgumentException("blocked weights need multiples of 32 rows and columns, got " + N + "x" + K);
        run(new Shape(true, paddedTokens(M), K, N, ldDst), src, w, dst);
    }

    private record Shape(boolean tiled, int m, int k, int n, int ldDst) {}

    /** A primitive and the memory objects whose data handles each call points at its operands. */
    private record Primitive(MemorySegment primitive, MemorySegment src, MemorySegment weights, MemorySegment dst,
                             MemorySegment args, String implementation) {}

    private void run(Shape s, MemorySegment src, MemorySegment w, MemorySegment dst) {
        if (closed) throw new IllegalStateException("the oneDNN context is closed");
        long srcBytes = (long) s.m * s.k * 2, wBytes = (long) s.n * s.k * 2, dstBytes = ((long) (s.m - 1) * s.ldDst + s.n) * 4;
        if (src.byteSize() < srcBytes || w.byteSize() < wBytes || dst.byteSize() < dstBytes)
            throw new IllegalArgumentException("operands too small for " + s);
        Primitive p = primitives.computeIfAbsent(s, this::create);
        try {
            lib.ompSetNumThreads.invokeExact(threads);
            LibDnnl.check((int) lib.memorySetDataHandle.invokeExact(p.src, src), "dnnl_memory_set_data_handle");
            LibDnnl.check((int) lib.memorySetDataHandle.invokeExact(p.weights, w), "dnnl_memory_set_data_handle");
            LibDnnl.check((int) lib.memorySetDataHandle.invokeExact(p.dst, dst), "dnnl_memory_set_data_handle");
            LibDnnl.check((int) lib.primitiveExecute.invokeExact(p.primitive, stream, 3, p.args), "dnnl_primitive_execute");
            LibDnnl.check((int) lib.streamWait.invokeExact(stream), "dnnl_stream_wait");
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The oneDNN implementation a product of this shape runs (e.g. "brg:avx512_core_bf16"), for reports. */
    public String implementation(boolean tiled, int m, int k, int n) {
        return primitives.computeIfAbsent(new Shape(tiled, paddedTokens(m), k, n, n), this::create).implementation;
    }

    private Primitive create(Shape s) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment srcMd = a.allocate(LibDnnl.MEMORY_DESC_BYTES, 64);
            MemorySegment wMd = a.allocate(LibDnnl.MEMORY_DESC_BYTES, 64);
            MemorySegment dstMd = a.allocate(LibDnnl.MEMORY_DESC_BYTES, 64);
            desc(a, srcMd, LibDnnl.DT_BF16, LibDnnl.TAG_AB, s.m, s.k);
            desc(a, wMd, LibDnnl.DT_BF16, s.tiled ? LibDnnl.TAG_BA16A32B2A : LibDnnl.TAG_BA, s.k, s.n);
            strided(a, dstMd, LibDnnl.DT_F32, new long[]{s.m, s.n}, new long[]{s.ldDst, 1});
            MemorySegment opDesc = a.allocate(LibDnnl.MATMUL_DESC_BYTES, 64);
            LibDnnl.check((int) lib.matmulDescInit.invokeExact(opDesc, srcMd, wMd, MemorySegment.NULL, dstMd), "dnnl_matmul_desc_init " + s);
            MemorySegment out = a.allocate(ADDRESS);
            LibDnnl.check((int) lib.primitiveDescCreate.invokeExact(out, opDesc, MemorySegment.NULL, engine, MemorySegment.NULL),
                    "dnnl_primitive_desc_create " + s);
            MemorySegment pd = out.get(ADDRESS, 0);
            String impl;
            MemorySegment prim;
            try {
                MemorySegment str = a.allocate(ADDRESS);
                LibDnnl.check((int) lib.primitiveDescQuery.invokeExact(pd, LibDnnl.QUERY_IMPL_INFO_STR, 0, str), "dnnl_primitive_desc_query");
                impl = str.get(ADDRESS, 0).reinterpret(256).getString(0);
                LibDnnl.check((int) lib.primitiveCreate.invokeExact(out, pd), "dnnl_primitive_create " + s);
                prim = out.get(ADDRESS, 0);
            } finally {
                int ignored = (int) lib.primitiveDescDestroy.invokeExact(pd);
            }
            MemorySegment mSrc = memory(a, srcMd), mW = memory(a, wMd), mDst = memory(a, dstMd);
            // dnnl_exec_arg_t {int arg; dnnl_memory_t memory;}: 16 bytes each
            MemorySegment args = arena.allocate(48, 8);
            args.set(JAVA_INT, 0, LibDnnl.ARG_SRC);
            args.set(ADDRESS, 8, mSrc);
            args.set(JAVA_INT, 16, LibDnnl.ARG_WEIGHTS);
            args.set(ADDRESS, 24, mW);
            args.set(JAVA_INT, 32, LibDnnl.ARG_DST);
            args.set(ADDRESS, 40, mDst);
            return new Primitive(prim, mSrc, mW, mDst, args, impl);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private void desc(Arena a, MemorySegment md, int dataType, int tag, long... dims) throws Throwable {
        LibDnnl.check((int) lib.memoryDescInitByTag.invokeExact(md, dims.length, dims(a, dims), dataType, tag), "dnnl_memory_desc_init_by_tag");
    }

    private void strided(Arena a, MemorySegment md, int dataType, long[] dims, long[] strides) throws Throwable {
        LibDnnl.check((int) lib.memoryDescInitByStrides.invokeExact(md, dims.length, dims(a, dims), dataType, dims(a, strides)),
                "dnnl_memory_desc_init_by_strides");
    }

    private static MemorySegment dims(Arena a, long[] v) {
        MemorySegment d = a.allocate(JAVA_LONG, LibDnnl.MAX_NDIMS);
        for (int i = 0; i < v.length; i++) d.setAtIndex(JAVA_LONG, i, v[i]);
        return d;
    }

    /** A memory object of descriptor {@code md} with no data yet (each call sets it). */
    private MemorySegment memory(Arena a, MemorySegment md) throws Throwable {
        MemorySegment out = a.allocate(ADDRESS);
        LibDnnl.check((int) lib.memoryCreate.invokeExact(out, md, engine, MemorySegment.NULL), "dnnl_memory_create");
        return out.get(ADDRESS, 0);
    }

    @Override public void close() {
        if (closed) return;
        closed = true;
        try {
            for (Primitive p : primitives.values()) {
                int r1 = (int) lib.primitiveDestroy.invokeExact(p.primitive);
                int r2 = (int) lib.memoryDestroy.invokeExact(p.src);
                int r3 = (int) lib.memoryDestroy.invokeExact(p.weights);
                int r4 = (int) lib.memoryDestroy.invokeExact(p.dst);
            }
            int r = (int) lib.streamDestroy.invokeExact(stream);
        } catch (Throwable ignored) {
            // releasing native objects at shutdown: nothing useful to do on failure
        } finally {
            primitives.clear();
            scratch.clear();
            heapScratch.clear();
            arena.close();
        }
    }

}
