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
     * What a quantized (or f16) weight's native products read ({@code --native-copies none|bf16}): its own blocks,
     * dequantized to bf16 panel by panel at every product, or a bf16 copy made at load and multiplied in place as a
     * bf16 matrix is: 2 bytes per weight more memory, and native products from fewer tokens.
     */
    public enum Copies {
        NONE, BF16;

        public static Copies parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--native-copies must be none or bf16, got '" + s + "'");
            }
        }
    }

    /**
     * Fewest tokens whose product runs natively, per weight format. A bf16 matrix is multiplied in place, so oneDNN
     * wins from two tokens on; other formats are first dequantized to bf16, which pays only when enough tokens share
     * each dequantized panel: Q8_0's Java kernels stay ahead below 32 (docs/bench/native.md).
     */
    public static final int MIN_TOKENS_BF16 = 2, MIN_TOKENS_Q8_0 = 32, MIN_TOKENS_DEQUANTIZED = 16;
    /**
     * Fewest tokens whose product with a quantized weight's bf16 copy runs natively: Q8_0's Java kernels, which read
     * half the copy's bytes, stay ahead up to 4 tokens; the other formats' from 2 on are not (docs/bench/native.md).
     */
    public static final int MIN_TOKENS_COPY_Q8_0 = 5, MIN_TOKENS_COPY = 2;

    private final Dnnl dnnl;            // null: the Java kernels
    private final String description;
    private final Copies copies;

    private NativeKernels(Dnnl dnnl, String description, Copies copies) {
        this.dnnl = dnnl;
        this.description = description;
        this.copies = copies;
    }

    private NativeKernels(Dnnl dnnl, String description) { this(dnnl, description, Copies.NONE); }

    /** The Java kernels only. */
    public static NativeKernels java() { return new NativeKernels(null, "java"); }

    /**
     * Resolves a choice: {@code native} without a usable oneDNN is refused with the reason and the fix; {@code auto}
     * then falls back to the Java kernels and its {@link #description} says why.
     */
    public static NativeKernels resolve(Choice choice) { return resolve(choice, Copies.NONE); }

    /** As {@link #resolve(Choice)}, with quantized weights' native products reading {@code copies}. */
    public static NativeKernels resolve(Choice choice, Copies copies) {
        return choice == Choice.JAVA ? javaOnly(copies) : resolve(choice, Dnnl.load(), copies);
    }

    /** {@link #resolve(Choice)} with oneDNN already loaded (or not): {@code l}. */
    public static NativeKernels resolve(Choice choice, Dnnl.Loaded l) { return resolve(choice, l, Copies.NONE); }

    /** {@link #resolve(Choice, Copies)} with oneDNN already loaded (or not): {@code l}. */
    public static NativeKernels resolve(Choice choice, Dnnl.Loaded l, Copies copies) {
        if (choice == Choice.JAVA) return javaOnly(copies);
        String ignored = copies == Copies.BF16 ? "; no bf16 copies made: the Java kernels multiply the quantized blocks" : "";
        if (l instanceof Dnnl.Available a && choice == Choice.AUTO && !a.dnnl().nativeBf16())
            return new NativeKernels(null, "java (oneDNN not used: this CPU has no bf16 dot products (oneDNN ISA " + a.dnnl().isa()
                    + "), so its bf16 matmul is emulated; --kernels native forces it)" + ignored);
        if (l instanceof Dnnl.Available a) return new NativeKernels(a.dnnl(), "native (oneDNN " + a.dnnl().version() + " bf16 matmul)", copies);
        String why = ((Dnnl.Unavailable) l).reason();
        if (choice == Choice.NATIVE) throw new IllegalArgumentException("--kernels native: " + why);
        return new NativeKernels(null, "java (oneDNN not used: " + why + ")" + ignored);
    }

    /** {@code --kernels java}, refusing bf16 copies, which only native products read. */
    private static NativeKernels javaOnly(Copies copies) {
        if (copies == Copies.BF16)
            throw new IllegalArgumentException("--native-copies bf16 needs the native kernels (--kernels auto or native): "
                    + "--kernels java multiplies the quantized blocks themselves");
        return java();
    }

    public boolean isNative() { return dnnl != null; }

    /**
     * "java", "native (oneDNN 2.6.3 bf16 matmul)" or "java (oneDNN not used: …)": what benchmarks report; it names
     * the bf16 bytes {@link #wrap} kept on the Java kernels, if any.
     */
    public String description() {
        long kept = keptOnJava.get(), copied = copiedBytes.get(), uncopied = notCopied.get();
        String d = description;
        if (copied > 0) d += "; bf16 copies of quantized matrices: " + mib(copied);
        if (uncopied > 0) d += "; " + mib(uncopied) + " of quantized matrices not copied (no memory): dequantized per product";
        if (kept > 0) d += "; " + (kept >> 20) + " MiB of bf16 matrices kept on the Java kernels: no memory for their native copies";
        return d;
    }

    /** A rank's context ({@link #isNative} only), running each call on {@code threads} threads. */
    public DnnlContext context(int threads) {
        if (dnnl == null) throw new IllegalStateException("the Java kernels have no oneDNN context");
        return dnnl.context(threads);
    }

    /**
     * {@code w} behind native products where they pay for its format, else {@code w} itself. A bf16 matrix is copied
     * off-heap for oneDNN (its heap copy stays for one-token products); with {@link Copies#BF16} so is any other
     * format, dequantized. When a copy would leave less than a tenth of the machine's memory available, a bf16 matrix
     * stays on the Java kernels, another is dequantized per product, and {@link #description} says so.
     */
    public Weight wrap(Weight w, DnnlContext ctx) {
        int min = minTokens(w);
        if (min == 0) return w;
        if (w instanceof Matrix m && m.dtype() == DType.BF16) {
            if (!roomFor(m.bytes())) {
                keptOnJava.addAndGet(m.bytes());
                return w;
            }
        } else if (copies == Copies.BF16) {
            long bytes = 2L * ((w.rows() + 31) / 32 * 32) * w.cols();                 // at most: whole tiles of 32 rows
            if (roomFor(bytes)) {
                DnnlWeight d = new DnnlWeight(w, ctx, w instanceof Q8Matrix ? MIN_TOKENS_COPY_Q8_0 : MIN_TOKENS_COPY, true);
                copiedBytes.addAndGet(d.copyBytes());
                return d;
            }
            notCopied.addAndGet(bytes);
        }
        return new DnnlWeight(w, ctx, min);
    }

    private static String mib(long bytes) { return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0); }

    /** Whether {@code bytes} more would leave at least a tenth of the machine's memory available (unknown: yes). */
    private static boolean roomFor(long bytes) {
        long avail = availableMemory();
        return avail < 0 || avail - bytes >= totalMemory() / 10;
    }

    private final java.util.concurrent.atomic.AtomicLong keptOnJava = new java.util.concurrent.atomic.AtomicLong(),
            copiedBytes = new java.util.concurrent.atomic.AtomicLong(), notCopied = new java.util.concurrent.atomic.AtomicLong();

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
