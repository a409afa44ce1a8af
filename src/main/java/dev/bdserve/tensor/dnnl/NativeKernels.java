package dev.bdserve.tensor.dnnl;

import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import dev.bdserve.tensor.Q8Matrix;
import dev.bdserve.tensor.Weight;

import java.util.Locale;

/**
 * Which kernels a model group's matrix products run: the Java (Vector API) kernels, which are the reference, or
 * oneDNN's bf16 matmuls for the products where they are faster ({@code --kernels auto|java|native}). Resolved once
 * per group; {@link #wrap} then chooses per weight.
 */
public final class NativeKernels {
    /** What the user asked for. */
    public enum Choice {
        /** oneDNN when the library loads and the CPU has bf16 dot products, else the Java kernels (saying why). */
        AUTO,
        JAVA,
        /** oneDNN, or a refusal naming why it cannot load. */
        NATIVE;

        public static Choice parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--kernels must be auto, java or native, got '" + s + "'");
            }
        }
    }

    /**
     * Fewest tokens whose product runs natively, per weight format. A bf16 matrix is multiplied in place, so oneDNN
     * wins from two tokens on; other formats are first dequantized to bf16, which pays only when enough tokens share
     * each dequantized panel: Q8_0's Java kernels stay ahead below 32 (docs/bench/native.md).
     */
    public static final int MIN_TOKENS_BF16 = 2, MIN_TOKENS_Q8_0 = 32, MIN_TOKENS_DEQUANTIZED = 16;

    private final Dnnl dnnl;            // null: the Java kernels
    private final String description;

    private NativeKernels(Dnnl dnnl, String description) {
        this.dnnl = dnnl;
        this.description = description;
    }

    /** The Java kernels only. */
    public static NativeKernels java() { return new NativeKernels(null, "java"); }

    /**
     * Resolves a choice: {@code native} without a usable oneDNN is refused with the reason and the fix; {@code auto}
     * then falls back to the Java kernels and its {@link #description} says why.
     */
    public static NativeKernels resolve(Choice choice) { return choice == Choice.JAVA ? java() : resolve(choice, Dnnl.load()); }

    /** {@link #resolve(Choice)} with oneDNN already loaded (or not): {@code l}. */
    public static NativeKernels resolve(Choice choice, Dnnl.Loaded l) {
        if (choice == Choice.JAVA) return java();
        if (l instanceof Dnnl.Available a && choice == Choice.AUTO && !a.dnnl().nativeBf16())
            return new NativeKernels(null, "java (oneDNN not used: this CPU has no bf16 dot products (oneDNN ISA " + a.dnnl().isa()
                    + "), so its bf16 matmul is emulated; --kernels native forces it)");
        if (l instanceof Dnnl.Available a) return new NativeKernels(a.dnnl(), "native (oneDNN " + a.dnnl().version() + " bf16 matmul)");
        String why = ((Dnnl.Unavailable) l).reason();
        if (choice == Choice.NATIVE) throw new IllegalArgumentException("--kernels native: " + why);
        return new NativeKernels(null, "java (oneDNN not used: " + why + ")");
    }

    public boolean isNative() { return dnnl != null; }

    /**
     * "java", "native (oneDNN 2.6.3 bf16 matmul)" or "java (oneDNN not used: …)": what benchmarks report; it names
     * the bf16 bytes {@link #wrap} kept on the Java kernels, if any.
     */
    public String description() {
        long kept = keptOnJava.get();
        return kept == 0 ? description : description + "; " + (kept >> 20) + " MiB of bf16 matrices kept on the Java kernels: "
                + "no memory for their native copies";
    }

    /** A rank's context ({@link #isNative} only), running each call on {@code threads} threads. */
    public DnnlContext context(int threads) {
        if (dnnl == null) throw new IllegalStateException("the Java kernels have no oneDNN context");
        return dnnl.context(threads);
    }

    /**
     * {@code w} behind native products where they pay for its format, else {@code w} itself. A bf16 matrix is copied
     * off-heap for oneDNN (its heap copy stays for one-token products); when that copy would leave less than a tenth
     * of the machine's memory available, the matrix stays on the Java kernels and {@link #description} says so.
     */
    public Weight wrap(Weight w, DnnlContext ctx) {
        int min = minTokens(w);
        if (min == 0) return w;
        if (w instanceof Matrix m && m.dtype() == DType.BF16) {
            long avail = availableMemory();
            if (avail >= 0 && avail - m.bytes() < totalMemory() / 10) {
                keptOnJava.addAndGet(m.bytes());
                return w;
            }
        }
        return new DnnlWeight(w, ctx, min);
    }

    private final java.util.concurrent.atomic.AtomicLong keptOnJava = new java.util.concurrent.atomic.AtomicLong();

    /** MemAvailable of /proc/meminfo (page cache counts as available), else the JVM's free-memory figure; -1: unknown. */
    static long availableMemory() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo")))
                if (line.startsWith("MemAvailable:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (java.io.IOException | RuntimeException ignored) {
            // not Linux: fall through
        }
        var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean s ? s.getFreeMemorySize() : -1;
    }

    private static long totalMemory() {
        var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean s ? s.getTotalMemorySize() : 0;
    }

    /** Fewest tokens whose product with {@code w} runs natively; 0: never (fp32 weights stay on the exact path). */
    static int minTokens(Weight w) {
        if (w instanceof Matrix m) return switch (m.dtype()) {
            case BF16 -> MIN_TOKENS_BF16;
            case F16 -> MIN_TOKENS_DEQUANTIZED;
            case F32 -> 0;
        };
        if (w instanceof Q8Matrix) return MIN_TOKENS_Q8_0;
        return MIN_TOKENS_DEQUANTIZED;
    }

}
