package dev.bdserve.lab.train;

/**
 * Linear warm-up then cosine decay (transformers' get_cosine_schedule_with_warmup, with a floor):
 * lr(s) = peak·(s+1)/warmup for s < warmup, then min + (peak − min)·½(1 + cos(π·progress)).
 *
 * @param peak     peak learning rate
 * @param warmup   warm-up steps
 * @param total    total steps
 * @param minRatio the floor as a fraction of peak
 */
public record LrSchedule(double peak, int warmup, int total, double minRatio) {
    public LrSchedule {
        if (!(peak > 0)) throw new IllegalArgumentException("learning rate must be positive, got " + peak);
        if (warmup < 0 || total < 1) throw new IllegalArgumentException("need warmup ≥ 0 and total ≥ 1 steps");
        if (!(minRatio >= 0 && minRatio <= 1)) throw new IllegalArgumentException("min ratio must be in [0, 1]");
    }

    /** The learning rate of 0-based step s. */
    public double at(int s) {
        if (s < warmup) return peak * (s + 1) / warmup;
        double progress = total <= warmup ? 1 : Math.min(1, (s - warmup) / (double) Math.max(1, total - warmup));
        double min = peak * minRatio;
        return min + (peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
}
