package dev.bdserve.lab.train;

/**
 * Optimisation settings of a training run, validated.
 *
 * @param steps        optimizer steps in all
 * @param batch        sequences per step
 * @param lr           peak learning rate
 * @param warmup       warm-up steps (linear), then cosine decay to minLrRatio·lr
 * @param minLrRatio   the cosine floor as a fraction of lr
 * @param weightDecay  AdamW decoupled weight decay
 * @param maxGradNorm  clip the global gradient norm to this (0: no clipping)
 * @param seed         seed of the adapter init and the data order
 * @param threads      worker threads (each takes a share of the batch's sequences)
 * @param evalEvery    evaluate on the held-out split every this many steps (0: only at the start and end)
 * @param saveEvery    write a checkpoint every this many steps (0: only at the end)
 */
public record TrainOptions(int steps, int batch, double lr, int warmup, double minLrRatio, double weightDecay,
                           double maxGradNorm, long seed, int threads, int evalEvery, int saveEvery) {
    public TrainOptions {
        if (steps < 1) throw new IllegalArgumentException("steps must be ≥ 1, got " + steps);
        if (batch < 1) throw new IllegalArgumentException("batch must be ≥ 1, got " + batch);
        if (!(lr > 0)) throw new IllegalArgumentException("lr must be positive, got " + lr);
        if (warmup < 0) throw new IllegalArgumentException("warmup must be ≥ 0");
        if (!(weightDecay >= 0)) throw new IllegalArgumentException("weight decay must be ≥ 0");
        if (!(maxGradNorm >= 0)) throw new IllegalArgumentException("max grad norm must be ≥ 0");
        if (threads < 1) throw new IllegalArgumentException("threads must be ≥ 1");
        if (evalEvery < 0 || saveEvery < 0) throw new IllegalArgumentException("eval/save intervals must be ≥ 0");
    }

    public LrSchedule schedule() { return new LrSchedule(lr, warmup, steps, minLrRatio); }
}
