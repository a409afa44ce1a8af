package dev.bdserve.lora;

import java.util.ArrayList;
import java.util.List;

/**
 * Scratch buffers and counters of the LoRA path for the steps one thread drives (one per rank, beside the model's
 * workspace): grown to the largest step seen and reused, so a step allocates nothing per layer and group.
 */
public final class LoraWorkspace {
    final LoraStats stats = new LoraStats();
    final List<LoraBatch.Segment> active = new ArrayList<>();  // segments of the current group that have work
    private Segment[] segments = new Segment[0];
    float[] exchange = new float[0];                            // S-LoRA: the packed shrink outputs
    float[] gathered = new float[0];                            // S-LoRA: [N][packed] after the all-gather

    /** Counters of the LoRA path over the steps run with this workspace. */
    public LoraStats stats() { return stats; }

    /** The scratch of the i-th segment of a group (segments may run on different threads at once). */
    Segment segment(int i) {
        if (i >= segments.length) {
            Segment[] more = java.util.Arrays.copyOf(segments, Math.max(i + 1, 2 * segments.length));
            for (int k = segments.length; k < more.length; k++) more[k] = new Segment();
            segments = more;
        }
        return segments[i];
    }

    /** One segment's buffers; each holds at least what was asked for, its contents left from earlier use. */
    static final class Segment {
        float[] xs = new float[0];    // [n, xWidth] the segment's inputs, when not already contiguous
        float[] s = new float[0];     // [n, sWidth] shrink output
        float[] full = new float[0];  // [n, N·sWidth] shrink output after an all-gather
        float[] xb = new float[0];    // [n, in/M] one input slice of a block-diagonal shrink
        float[] sb = new float[0];    // [n, r/M] that block's output
        float[] sIn = new float[0];   // [n, r] one member's gathered shrink output
        int[] sOffs = new int[0], yOffs = new int[0]; // [n] per token: its coefficients in s, its output row in y
        float[] shrunk;               // s or full: what the expand reads

        static float[] atLeast(float[] a, int n) { return a.length >= n ? a : new float[Math.max(n, a.length + a.length / 2)]; }

        static int[] atLeast(int[] a, int n) { return a.length >= n ? a : new int[Math.max(n, a.length + a.length / 2)]; }
    }

    static float[] atLeast(float[] a, int n) { return Segment.atLeast(a, n); }
}
