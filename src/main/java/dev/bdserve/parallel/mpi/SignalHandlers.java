package dev.bdserve.parallel.mpi;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A snapshot of the process's POSIX signal dispositions ({@code struct sigaction}, read with libc's
 * {@code sigaction(sig, NULL, &old)}) for the signals HotSpot relies on, to detect and undo a native library
 * (Open MPI's opal, UCX's libucs, PSM) replacing the JVM's handlers. HotSpot turns SIGSEGV into implicit null checks,
 * safepoint polls and stack-overflow checks, uses SIGBUS for mapped-file errors, SIGFPE for integer division,
 * SIGILL/SIGTRAP for compiled-code traps, SIGUSR2 (SR_signum) to suspend threads, SIGQUIT for thread dumps and
 * SIGHUP/SIGINT/SIGTERM for shutdown hooks. Linux x86_64/aarch64 glibc only ({@code struct sigaction} is 152 bytes,
 * the handler is its first word).
 */
final class SignalHandlers {
    /** Signal numbers on Linux x86_64/aarch64. */
    static final Map<String, Integer> JVM_SIGNALS = new LinkedHashMap<>();
    static {
        JVM_SIGNALS.put("SIGSEGV", 11);
        JVM_SIGNALS.put("SIGBUS", 7);
        JVM_SIGNALS.put("SIGFPE", 8);
        JVM_SIGNALS.put("SIGILL", 4);
        JVM_SIGNALS.put("SIGTRAP", 5);
        JVM_SIGNALS.put("SIGUSR2", 12);
        JVM_SIGNALS.put("SIGQUIT", 3);
        JVM_SIGNALS.put("SIGHUP", 1);
        JVM_SIGNALS.put("SIGINT", 2);
        JVM_SIGNALS.put("SIGTERM", 15);
    }
    private static final long SIGACTION_BYTES = 152;
    private static final long SA_FLAGS_OFFSET = 136;

    private static final MethodHandle SIGACTION = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("sigaction").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));

    private final Map<String, byte[]> raw = new LinkedHashMap<>();

    private SignalHandlers() {}

    /** Reads the current dispositions of {@link #JVM_SIGNALS}. */
    static SignalHandlers capture() {
        SignalHandlers s = new SignalHandlers();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(SIGACTION_BYTES, 16);
            for (Map.Entry<String, Integer> e : JVM_SIGNALS.entrySet()) {
                buf.fill((byte) 0);
                int rc = (int) SIGACTION.invokeExact((int) e.getValue(), MemorySegment.NULL, buf);
                if (rc != 0) throw new IllegalStateException("sigaction(" + e.getKey() + ") failed");
                s.raw.put(e.getKey(), buf.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        return s;
    }

    /** Handler address of a signal in this snapshot. */
    long handler(String signal) {
        return MemorySegment.ofArray(raw.get(signal)).get(JAVA_LONG.withByteAlignment(1), 0);
    }

    int flags(String signal) {
        return MemorySegment.ofArray(raw.get(signal)).get(JAVA_INT.withByteAlignment(1), SA_FLAGS_OFFSET);
    }

    /** Names of the signals whose handler or flags differ from {@code earlier}. */
    List<String> changedSince(SignalHandlers earlier) {
        List<String> out = new ArrayList<>();
        for (String sig : raw.keySet()) {
            if (handler(sig) != earlier.handler(sig) || flags(sig) != earlier.flags(sig)) out.add(sig);
        }
        return out;
    }

    /** Re-installs this snapshot's disposition of the given signals. */
    void restore(List<String> signals) {
        try (Arena a = Arena.ofConfined()) {
            for (String sig : signals) {
                MemorySegment buf = a.allocate(SIGACTION_BYTES, 16);
                MemorySegment.copy(MemorySegment.ofArray(raw.get(sig)), 0, buf, 0, SIGACTION_BYTES);
                int rc = (int) SIGACTION.invokeExact((int) JVM_SIGNALS.get(sig), buf, MemorySegment.NULL);
                if (rc != 0) throw new IllegalStateException("sigaction(" + sig + ") restore failed");
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** "SIGSEGV 0x7f.. -> 0x7f.." lines for the given signals. */
    String describe(SignalHandlers earlier, List<String> signals) {
        StringBuilder sb = new StringBuilder();
        for (String sig : signals) {
            if (!sb.isEmpty()) sb.append(", ");
            sb.append(sig).append(" handler 0x").append(Long.toHexString(earlier.handler(sig)))
              .append(" -> 0x").append(Long.toHexString(handler(sig)));
        }
        return sb.toString();
    }
}
