package dev.bdserve.parallel.mpi;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Downcall handles into Open MPI's {@code libmpi.so.40} (the C ABI of Open MPI 4.x and 5.x) and the addresses of its
 * predefined handles. Open MPI's {@code MPI_Comm}, {@code MPI_Datatype}, {@code MPI_Op} and {@code MPI_Errhandler}
 * are pointers, and the predefined ones are the addresses of global symbols ({@code MPI_COMM_WORLD} is
 * {@code &ompi_mpi_comm_world}, see {@code OMPI_PREDEFINED_GLOBAL} in mpi.h), so they are looked up by name here.
 * This ABI detail is Open MPI's: MPICH's handles are integers and are not supported.
 *
 * <p>One instance per {@link MpiCommunicator}; nothing here is static except constants.
 */
final class LibMpi {
    /** Soname of Open MPI's C library (ABI version 40 for Open MPI 3.x, 4.x and 5.x). */
    static final String SONAME = "libmpi.so.40";
    static final String INSTALL_HINT =
            "Open MPI's C library " + SONAME + " was not found: install it with "
            + "`apt-get install -y openmpi-bin libopenmpi-dev` (Debian/Ubuntu) or point BDSERVE_LIBMPI at libmpi.so.40";

    /** mpi.h: {@code #define MPI_IN_PLACE ((void *) 1)}. */
    static final MemorySegment MPI_IN_PLACE = MemorySegment.ofAddress(1);
    /** mpi.h: {@code MPI_SUCCESS 0}. */
    static final int MPI_SUCCESS = 0;
    /** mpi.h: {@code MPI_MAX_ERROR_STRING} = {@code OPAL_MAX_ERROR_STRING} = 256. */
    static final int MPI_MAX_ERROR_STRING = 256;
    /** mpi.h: {@code MPI_MAX_LIBRARY_VERSION_STRING} = 256. */
    static final int MPI_MAX_LIBRARY_VERSION_STRING = 256;
    /** mpi.h: enum {SINGLE, FUNNELED, SERIALIZED, MULTIPLE}. */
    static final int MPI_THREAD_SINGLE = 0, MPI_THREAD_FUNNELED = 1, MPI_THREAD_SERIALIZED = 2, MPI_THREAD_MULTIPLE = 3;

    private static final int RTLD_NOW = 2, RTLD_GLOBAL = 0x100;

    final Path path;
    final MemorySegment commWorld, mpiFloat, mpiInt, opSum, errorsReturn;

    final MethodHandle initThread, initialized, finalized, finalizeH, abortH;
    final MethodHandle commRank, commSize, commSetErrhandler, errorString, libraryVersion, queryThread;
    final MethodHandle barrier, bcast;
    /** Normal downcalls: the thread is in native state, GC and safepoints proceed while MPI waits. */
    final MethodHandle allreduce, allgather;
    /** Critical downcalls with heap access: Java arrays passed in place, no safepoint until they return. */
    final MethodHandle allreduceCritical, allgatherCritical;

    private LibMpi(Path path, SymbolLookup lib) {
        this.path = path;
        Linker linker = Linker.nativeLinker();
        commWorld = symbol(lib, "ompi_mpi_comm_world");
        mpiFloat = symbol(lib, "ompi_mpi_float");
        mpiInt = symbol(lib, "ompi_mpi_int");
        opSum = symbol(lib, "ompi_mpi_op_sum");
        errorsReturn = symbol(lib, "ompi_mpi_errors_return");

        FunctionDescriptor iA = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        FunctionDescriptor iAA = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
        initThread = linker.downcallHandle(symbol(lib, "MPI_Init_thread"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
        initialized = linker.downcallHandle(symbol(lib, "MPI_Initialized"), iA);
        finalized = linker.downcallHandle(symbol(lib, "MPI_Finalized"), iA);
        finalizeH = linker.downcallHandle(symbol(lib, "MPI_Finalize"), FunctionDescriptor.of(JAVA_INT));
        abortH = linker.downcallHandle(symbol(lib, "MPI_Abort"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        commRank = linker.downcallHandle(symbol(lib, "MPI_Comm_rank"), iAA);
        commSize = linker.downcallHandle(symbol(lib, "MPI_Comm_size"), iAA);
        commSetErrhandler = linker.downcallHandle(symbol(lib, "MPI_Comm_set_errhandler"), iAA);
        errorString = linker.downcallHandle(symbol(lib, "MPI_Error_string"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        libraryVersion = linker.downcallHandle(symbol(lib, "MPI_Get_library_version"), iAA);
        queryThread = linker.downcallHandle(symbol(lib, "MPI_Query_thread"), iA);
        barrier = linker.downcallHandle(symbol(lib, "MPI_Barrier"), iA);
        // int MPI_Bcast(void *buf, int count, MPI_Datatype, int root, MPI_Comm)
        bcast = linker.downcallHandle(symbol(lib, "MPI_Bcast"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        // int MPI_Allreduce(const void *send, void *recv, int count, MPI_Datatype, MPI_Op, MPI_Comm)
        FunctionDescriptor allreduceFd = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        // int MPI_Allgather(const void *send, int scount, MPI_Datatype, void *recv, int rcount, MPI_Datatype, MPI_Comm)
        FunctionDescriptor allgatherFd = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        MemorySegment allreduceSym = symbol(lib, "MPI_Allreduce"), allgatherSym = symbol(lib, "MPI_Allgather");
        allreduce = linker.downcallHandle(allreduceSym, allreduceFd);
        allgather = linker.downcallHandle(allgatherSym, allgatherFd);
        allreduceCritical = linker.downcallHandle(allreduceSym, allreduceFd, Linker.Option.critical(true));
        allgatherCritical = linker.downcallHandle(allgatherSym, allgatherFd, Linker.Option.critical(true));
    }

    /**
     * Loads libmpi with {@code RTLD_NOW | RTLD_GLOBAL} (Open MPI's plugins, {@code mca_*.so}, resolve symbols of
     * libmpi/libopen-pal against the global namespace; the JDK's own loader uses {@code RTLD_LOCAL}) and binds it.
     */
    static LibMpi load() {
        Path p = find();
        Linker linker = Linker.nativeLinker();
        MethodHandle dlopen = linker.downcallHandle(linker.defaultLookup().find("dlopen").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
        MethodHandle dlerror = linker.downcallHandle(linker.defaultLookup().find("dlerror").orElseThrow(),
                FunctionDescriptor.of(ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = (MemorySegment) dlopen.invokeExact(a.allocateFrom(p.toString()), RTLD_NOW | RTLD_GLOBAL);
            if (h.address() == 0) {
                MemorySegment e = (MemorySegment) dlerror.invokeExact();
                String msg = e.address() == 0 ? "?" : e.reinterpret(4096).getString(0);
                throw new UnsatisfiedLinkError("dlopen(" + p + ") failed: " + msg + ". " + INSTALL_HINT);
            }
        } catch (Error | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        // The library stays loaded for the life of the process (MPI cannot be re-initialised anyway).
        return new LibMpi(p, SymbolLookup.libraryLookup(p, Arena.global()));
    }

    /** BDSERVE_LIBMPI, then the usual Debian/Red Hat paths, then {@code ldconfig -p}. */
    static Path find() {
        String env = System.getenv("BDSERVE_LIBMPI");
        if (env != null && !env.isBlank()) {
            Path p = Path.of(env);
            if (!Files.isReadable(p)) throw new UnsatisfiedLinkError("BDSERVE_LIBMPI=" + env + " is not readable. " + INSTALL_HINT);
            return p;
        }
        List<Path> candidates = new ArrayList<>(List.of(
                Path.of("/usr/lib/x86_64-linux-gnu/" + SONAME), Path.of("/usr/lib/aarch64-linux-gnu/" + SONAME),
                Path.of("/usr/lib64/openmpi/lib/" + SONAME), Path.of("/usr/lib/openmpi/lib/" + SONAME),
                Path.of("/usr/local/lib/" + SONAME), Path.of("/opt/openmpi/lib/" + SONAME)));
        for (Path p : candidates) if (Files.isReadable(p)) return p;
        Path fromLdconfig = ldconfig();
        if (fromLdconfig != null) return fromLdconfig;
        throw new UnsatisfiedLinkError(INSTALL_HINT + " (looked in " + candidates + " and `ldconfig -p`)");
    }

    private static Path ldconfig() {
        for (String exe : new String[] {"/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"}) {
            try {
                Process pr = new ProcessBuilder(exe, "-p").redirectErrorStream(true).start();
                Path found = null;
                try (BufferedReader r = new BufferedReader(new InputStreamReader(pr.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        String t = line.trim();
                        int arrow = t.indexOf("=> ");
                        if (found == null && t.startsWith(SONAME + " ") && arrow > 0) found = Path.of(t.substring(arrow + 3).trim());
                    }
                }
                pr.waitFor(10, TimeUnit.SECONDS);
                if (found != null && Files.isReadable(found)) return found;
                return null;
            } catch (IOException e) {
                // try the next location of ldconfig
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }

    private static MemorySegment symbol(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new UnsatisfiedLinkError(
                "symbol " + name + " not found in " + SONAME + ": bdserve's MPI transport needs Open MPI (not MPICH). " + INSTALL_HINT));
    }
}
