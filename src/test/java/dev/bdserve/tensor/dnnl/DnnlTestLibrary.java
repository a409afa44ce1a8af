package dev.bdserve.tensor.dnnl;

import static org.junit.jupiter.api.Assertions.fail;

/** oneDNN for the native-kernel tests: {@code .ci/run} installs it; missing, a test fails saying how to install it. */
final class DnnlTestLibrary {
    private DnnlTestLibrary() {}

    static Dnnl require() {
        Dnnl.Loaded l = Dnnl.load();
        if (l instanceof Dnnl.Available a) return a.dnnl();
        return fail("the native-kernel tests need oneDNN 2.x: " + ((Dnnl.Unavailable) l).reason());
    }
}
