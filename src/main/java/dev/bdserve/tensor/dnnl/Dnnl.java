package dev.bdserve.tensor.dnnl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;

/**
 * oneDNN, bound once per process: its version and the CPU engine primitives are created on. Kernels use it through a
 * {@link DnnlContext} per tensor-parallel rank. {@link #load()} answers why the library is not usable rather than
 * failing, so {@code --kernels auto} can fall back to the Java kernels and say so.
 */
public final class Dnnl {
    final LibDnnl lib;
    final MemorySegment engine;
    private final int isa;

    private Dnnl(LibDnnl lib) {
        this.lib = lib;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            LibDnnl.check((int) lib.engineCreate.invokeExact(out, LibDnnl.ENGINE_CPU, 0L), "dnnl_engine_create");
            engine = out.get(ADDRESS, 0);
            isa = (int) lib.effectiveCpuIsa.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The library, or why it cannot be used. */
    public sealed interface Loaded permits Available, Unavailable {}

    public record Available(Dnnl dnnl) implements Loaded {}

    public record Unavailable(String reason) implements Loaded {}

    /**
     * Binds oneDNN 2.x ({@code libdnnl.so.2}, or the path in {@code BDSERVE_LIBDNNL}) and checks that it builds the
     * bf16 matmuls the kernels use on this CPU.
     */
    public static Loaded load() {
        Dnnl d;
        try {
            d = new Dnnl(LibDnnl.open());
        } catch (UnsatisfiedLinkError | IllegalStateException e) {
            return new Unavailable(e.getMessage());
        }
        try (DnnlContext probe = d.context(1)) {
            probe.implementation(false, 2, 32, 32);
            probe.implementation(true, 2, 32, 32);
        } catch (RuntimeException e) {
            return new Unavailable("oneDNN " + d.version() + " builds no bf16 matmul on this CPU: " + e.getMessage());
        }
        return new Available(d);
    }

    /** Whether oneDNN's kernels here have bf16 dot-product instructions (else it emulates them, slower than Java's fp32). */
    public boolean nativeBf16() { return (isa & LibDnnl.ISA_AVX512_CORE_BF16) == LibDnnl.ISA_AVX512_CORE_BF16; }

    /** oneDNN's {@code dnnl_cpu_isa_t} for this CPU, in hex. */
    public String isa() { return "0x" + Integer.toHexString(isa); }

    /** oneDNN's version, e.g. "2.6.3". */
    public String version() { return lib.version; }

    /** A context for one rank's kernels, running each call on a team of {@code threads} threads. */
    public DnnlContext context(int threads) { return new DnnlContext(this, threads); }
}
