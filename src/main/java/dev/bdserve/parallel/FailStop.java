package dev.bdserve.parallel;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Ends the process at once, for a group that lost a rank. {@link Runtime#halt} is not enough: it waits for a safepoint,
 * and a thread blocked in a critical downcall (an MPI collective waiting for a stopped peer, see docs/mpi.md) holds
 * safepoints off for as long as the peer is away. libc's {@code _exit} needs no safepoint; under mpirun the job then
 * ends too, since mpirun takes down every rank when one exits with a non-zero status.
 */
public final class FailStop {
    private FailStop() {}

    /** Exits with {@code status} now: no shutdown hooks, no finalization, no safepoint. */
    public static void exitNow(int status) {
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle exit = linker.downcallHandle(linker.defaultLookup().find("_exit").orElseThrow(),
                    FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
            exit.invokeExact(status);
        } catch (Throwable t) {
            Runtime.getRuntime().halt(status);   // no libc _exit here: the best the JVM offers
        }
    }
}
