package dev.bdserve.model;

/**
 * The projections of a decoder layer that share one input and run as one fused matmul (spec §1): q/k/v and gate/up
 * are column-parallel (each rank holds output columns), o and down row-parallel (each rank holds input rows, and the
 * partial outputs are summed by an all-reduce).
 */
public enum ProjectionGroup {
    QKV(true), O(false), GATE_UP(true), DOWN(false);

    private final boolean columnParallel;

    ProjectionGroup(boolean columnParallel) { this.columnParallel = columnParallel; }

    /** True when the group's output is split over the ranks; false when its input is. */
    public boolean columnParallel() { return columnParallel; }
}
