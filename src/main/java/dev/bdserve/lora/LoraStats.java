package dev.bdserve.lora;

/** Counters of the LoRA path: adapter bytes read, FLOPs and time, accumulated over steps until reset. */
public final class LoraStats {
    private long bytes, flops, nanos, steps;

    synchronized void add(long bytes, long flops) { this.bytes += bytes; this.flops += flops; }
    synchronized void addNanos(long n) { nanos += n; }
    /** Counts one step that ran the LoRA path. */
    public synchronized void step() { steps++; }

    public synchronized long bytes() { return bytes; }
    public synchronized long flops() { return flops; }
    public synchronized long nanos() { return nanos; }
    public synchronized long steps() { return steps; }
    public synchronized void reset() { bytes = flops = nanos = steps = 0; }
}
