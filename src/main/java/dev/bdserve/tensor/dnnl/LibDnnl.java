package dev.bdserve.tensor.dnnl;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Downcall handles into oneDNN's C library {@code libdnnl.so.2} (oneDNN 2.x, Debian's {@code libdnnl2}) and, for the
 * size of the thread team a call runs on, the OpenMP runtime it was built against ({@code libgomp.so.1}). Only what a
 * bf16 matmul primitive needs is bound. The constants are the values of oneDNN 2.x's {@code dnnl_types.h}; version 3
 * replaced the op-descriptor functions used here, so it is refused by {@link #open}.
 */
final class LibDnnl {
    static final String SONAME = "libdnnl.so.2";
    static final String INSTALL_HINT = "oneDNN 2.x (" + SONAME + ") was not found: install it with `apt-get install -y libdnnl-dev` "
            + "(Debian/Ubuntu) or point BDSERVE_LIBDNNL at libdnnl.so.2";

    // dnnl_types.h (oneDNN 2.6)
    static final int SUCCESS = 0;
    static final int ENGINE_CPU = 1;
    static final int DT_BF16 = 2, DT_F32 = 3;
    static final int TAG_AB = 3, TAG_BA = 22, TAG_BA16A32B2A = 378;
    static final int STREAM_DEFAULT_FLAGS = 1;
    static final int QUERY_IMPL_INFO_STR = 8;
    static final int ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33;
    static final int CPU_RUNTIME_OMP = 2;
    /** {@code dnnl_cpu_isa_avx512_core_bf16}: the bits of an ISA with bf16 dot-product instructions (AMX includes them). */
    static final int ISA_AVX512_CORE_BF16 = 0xE7;
    /** Bytes of {@code dnnl_memory_desc_t} (696) and {@code dnnl_matmul_desc_t} (2800) in 2.6, rounded up. */
    static final long MEMORY_DESC_BYTES = 1024, MATMUL_DESC_BYTES = 4096;
    /** {@code DNNL_MAX_NDIMS}: the length of a {@code dnnl_dims_t}. */
    static final int MAX_NDIMS = 12;

    final String version;
    final MethodHandle engineCreate, engineDestroy, streamCreate, streamDestroy, streamWait;
    final MethodHandle memoryDescInitByTag, memoryDescInitByStrides, matmulDescInit;
    final MethodHandle primitiveDescCreate, primitiveDescDestroy, primitiveDescQuery;
    final MethodHandle primitiveCreate, primitiveDestroy, primitiveExecute;
    final MethodHandle memoryCreate, memoryDestroy, memorySetDataHandle;
    /** {@code dnnl_cpu_isa_t dnnl_get_effective_cpu_isa(void)}: the instruction set oneDNN's kernels target here. */
    final MethodHandle effectiveCpuIsa;
    /** {@code void omp_set_num_threads(int)}: the team size of this thread's next parallel regions. */
    final MethodHandle ompSetNumThreads;

    private LibDnnl(SymbolLookup dnnl, SymbolLookup omp, String version) {
        this.version = version;
        Linker l = Linker.nativeLinker();
        engineCreate = handle(l, dnnl, "dnnl_engine_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG));
        engineDestroy = handle(l, dnnl, "dnnl_engine_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        streamCreate = handle(l, dnnl, "dnnl_stream_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        streamDestroy = handle(l, dnnl, "dnnl_stream_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        streamWait = handle(l, dnnl, "dnnl_stream_wait", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        // (dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_data_type_t, dnnl_format_tag_t)
        memoryDescInitByTag = handle(l, dnnl, "dnnl_memory_desc_init_by_tag",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        // (dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_data_type_t, const dnnl_dims_t strides)
        memoryDescInitByStrides = handle(l, dnnl, "dnnl_memory_desc_init_by_strides",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        // (dnnl_matmul_desc_t *, const md *src, const md *weights, const md *bias, const md *dst)
        matmulDescInit = handle(l, dnnl, "dnnl_matmul_desc_init",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        // (dnnl_primitive_desc_t *, const_dnnl_op_desc_t, const_dnnl_primitive_attr_t, dnnl_engine_t, hint)
        primitiveDescCreate = handle(l, dnnl, "dnnl_primitive_desc_create",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        primitiveDescDestroy = handle(l, dnnl, "dnnl_primitive_desc_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        primitiveDescQuery = handle(l, dnnl, "dnnl_primitive_desc_query",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
        primitiveCreate = handle(l, dnnl, "dnnl_primitive_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        primitiveDestroy = handle(l, dnnl, "dnnl_primitive_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        // (const_dnnl_primitive_t, dnnl_stream_t, int nargs, const dnnl_exec_arg_t *args)
        primitiveExecute = handle(l, dnnl, "dnnl_primitive_execute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
        // (dnnl_memory_t *, const dnnl_memory_desc_t *, dnnl_engine_t, void *handle)
        memoryCreate = handle(l, dnnl, "dnnl_memory_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        memoryDestroy = handle(l, dnnl, "dnnl_memory_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        memorySetDataHandle = handle(l, dnnl, "dnnl_memory_set_data_handle", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        effectiveCpuIsa = handle(l, dnnl, "dnnl_get_effective_cpu_isa", FunctionDescriptor.of(JAVA_INT));
        ompSetNumThreads = handle(l, omp, "omp_set_num_threads", FunctionDescriptor.ofVoid(JAVA_INT));
    }

    private static MethodHandle handle(Linker l, SymbolLookup lib, String name, FunctionDescriptor fd) {
        return l.downcallHandle(lib.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name + " not found in " + SONAME)), fd);
    }

    /**
     * Binds the library named by {@code BDSERVE_LIBDNNL} (a path) or {@link #SONAME} on the loader's path. Throws
     * {@link UnsatisfiedLinkError} with {@link #INSTALL_HINT} when it is absent, and when it is not oneDNN 2.x built
     * with OpenMP threading.
     */
    static LibDnnl open() {
        passiveOpenMpWaits();
        String path = System.getenv("BDSERVE_LIBDNNL");
        String name = path != null && !path.isBlank() ? path : SONAME;
        SymbolLookup dnnl;
        try {
            dnnl = SymbolLookup.libraryLookup(name, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new UnsatisfiedLinkError(INSTALL_HINT + " (" + e.getMessage() + ")");
        }
        // const dnnl_version_t *dnnl_version(void): {int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime}
        MemorySegment v;
        try {
            MethodHandle versionH = handle(Linker.nativeLinker(), dnnl, "dnnl_version", FunctionDescriptor.of(ADDRESS));
            v = ((MemorySegment) versionH.invokeExact()).reinterpret(32);
        } catch (Throwable t) {
            throw new UnsatisfiedLinkError(name + " is not oneDNN: " + t.getMessage());
        }
        int major = v.get(JAVA_INT, 0), minor = v.get(JAVA_INT, 4), patch = v.get(JAVA_INT, 8);
        int cpuRuntime = v.get(JAVA_INT, 24);
        String version = major + "." + minor + "." + patch;
        if (major != 2)
            throw new UnsatisfiedLinkError(name + " is oneDNN " + version + "; bdserve's native kernels bind oneDNN 2.x's C API (" + INSTALL_HINT + ")");
        if (cpuRuntime != CPU_RUNTIME_OMP)
            throw new UnsatisfiedLinkError(name + " (oneDNN " + version + ") uses CPU runtime " + cpuRuntime
                    + ", not OpenMP; bdserve sizes each call's thread team through OpenMP");
        SymbolLookup omp;
        try {
            omp = SymbolLookup.libraryLookup("libgomp.so.1", Arena.global());
        } catch (IllegalArgumentException e) {
            throw new UnsatisfiedLinkError("libgomp.so.1 (OpenMP, which " + name + " runs on) was not found: " + e.getMessage());
        }
        return new LibDnnl(dnnl, omp, version);
    }

    /**
     * Sets {@code OMP_WAIT_POLICY=PASSIVE} in this process's environment unless it is set, before the OpenMP runtime
     * loads and reads it. By default OpenMP's idle team threads spin after each call; between oneDNN calls the rank's
     * Java threads run the rest of the step on the same cores, and those spinning threads halved batched decode here
     * (docs/bench/native.md). Passive threads sleep at once; waking them costs tens of µs per call.
     */
    private static void passiveOpenMpWaits() {
        Linker l = Linker.nativeLinker();
        var setenv = l.defaultLookup().find("setenv");
        if (setenv.isEmpty()) return;
        MethodHandle h = l.downcallHandle(setenv.get(), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        try (Arena a = Arena.ofConfined()) {
            int ignored = (int) h.invokeExact(a.allocateFrom("OMP_WAIT_POLICY"), a.allocateFrom("PASSIVE"), 0);   // 0: keep a set value
        } catch (Throwable t) {
            throw new IllegalStateException("setenv OMP_WAIT_POLICY", t);
        }
    }

    /** Throws when a oneDNN call did not return {@code dnnl_success}. */
    static void check(int status, String call) {
        if (status != SUCCESS) throw new IllegalStateException("oneDNN " + call + " failed with status " + status + " (" + statusName(status) + ")");
    }

    /** dnnl_status_t's names (dnnl_types.h). */
    static String statusName(int status) {
        return switch (status) {
            case 1 -> "out of memory";
            case 2 -> "invalid arguments";
            case 3 -> "unimplemented";
            case 4 -> "iterator ends";
            case 5 -> "runtime error";
            case 6 -> "not required";
            default -> "unknown";
        };
    }
}
