package dev.bdserve.tensor.dnnl;

import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.Weight;

/**
 * Run in a child JVM whose oneDNN is capped by {@code DNNL_MAX_CPU_ISA}, as on a CPU without bf16 dot products:
 * prints what {@code --kernels auto} resolves to, then what {@code --kernels native} does: refused (its message), or
 * a Q8_0 and a bf16 product on oneDNN's emulated bf16 with their largest error against the bf16 reference, relative
 * to Σ|·|.
 */
public final class IsaCheck {
    public static void main(String[] args) {
        System.out.println("auto: " + NativeKernels.resolve(NativeKernels.Choice.AUTO).description());
        NativeKernels forced;
        try {
            forced = NativeKernels.resolve(NativeKernels.Choice.NATIVE);
        } catch (IllegalArgumentException e) {
            System.out.println("native refused: " + e.getMessage());
            return;
        }
        double worst = 0;
        try (DnnlContext ctx = forced.context(1)) {
            for (String format : new String[]{"q8_0", "bf16"}) {
                Weight base = DnnlWeightTest.weight(format, 70, 96, 5);
                int T = 40;
                float[] x = DnnlWeightTest.gaussian(T * 96, 9);
                double[][] ref = DnnlWeightTest.reference(base, x, T);
                float[] y = new float[T * 70];
                new DnnlWeight(base, ctx, 1).matmul(x, T, y, Parallel.serial());
                for (int i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(ref[0][i] - y[i]) / ref[1][i]);
            }
        }
        System.out.println("native worst relative error: " + worst);
    }
}
