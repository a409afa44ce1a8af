package dev.bdserve;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The command line that runs bdserve's CLI ({@code dev.bdserve.cli.Main}) in a child JVM on the tests' class path. */
public final class ChildJvm {
    private ChildJvm() {}

    /** This JDK's java with the Vector API module and native access, {@code jvmOptions}, the class path and Main. */
    public static List<String> mainCommand(String... jvmOptions) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(List.of(jvmOptions));
        cmd.addAll(List.of("-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), "dev.bdserve.cli.Main"));
        return cmd;
    }
}
