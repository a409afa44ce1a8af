package dev.bdserve.model;

/**
 * The low-rank adapter updates of one step on one rank: after each fused projection the forward pass asks them to
 * add every token's update to the projection's output. The lora package implements it; the model only calls it.
 */
public interface AdapterUpdates {
    /** A step whose tokens use no adapter. */
    AdapterUpdates NONE = (layer, g, x, xWidth, y, yWidth) -> { };

    /**
     * y[t, :] += Δ(x[t, :]) for the step's tokens that have an adapter touching group {@code g} of layer {@code layer}.
     *
     * @param x [T, xWidth] the group's input on this rank
     * @param y [T, yWidth] the group's output on this rank (fused members side by side, as the base projection writes them)
     */
    void addTo(int layer, ProjectionGroup g, float[] x, int xWidth, float[] y, int yWidth);
}
