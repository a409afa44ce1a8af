package dev.bdserve.model;

import java.util.Arrays;

/**
 * Keys and values of one sequence on one rank, for the KV heads that rank holds. Belongs to the
 * request, not to the model. Grows by doubling up to the model's context limit.
 */
public final class KvCache {
    private final int layers;
    private final int kvDim;        // localKvHeads × headDim
    private final int maxPositions; // the model's context limit
    private float[][] keys;         // [layer][capacity × kvDim], position-major, RoPE already applied
    private float[][] values;       // [layer][capacity × kvDim]
    private int capacity;           // positions allocated
    private int length;             // positions filled (the next position to write)

    KvCache(int layers, int kvDim, int maxPositions, int initialCapacity) {
        this.layers = layers;
        this.kvDim = kvDim;
        this.maxPositions = maxPositions;
        this.capacity = Math.max(1, Math.min(initialCapacity, maxPositions));
        this.keys = new float[layers][capacity * kvDim];
        this.values = new float[layers][capacity * kvDim];
    }

    /** Positions filled so far. */
    public int length() { return length; }

    /** Forgets positions ≥ n (e.g. to re-run a prompt suffix). */
    public void truncate(int n) {
        if (n < 0 || n > length) throw new IllegalArgumentException("truncate to " + n + " of " + length);
        length = n;
    }

    /** Bytes held by this cache. */
    public long bytes() { return 2L * layers * capacity * kvDim * Float.BYTES; }

    void ensureCapacity(int positions) {
        if (positions > maxPositions)
            throw new IllegalArgumentException("sequence of " + positions + " tokens exceeds the context limit of " + maxPositions);
        if (positions <= capacity) return;
        int cap = Math.min(maxPositions, Math.max(positions, capacity * 2));
        for (int l = 0; l < layers; l++) {
            keys[l] = Arrays.copyOf(keys[l], cap * kvDim);
            values[l] = Arrays.copyOf(values[l], cap * kvDim);
        }
        capacity = cap;
    }

    void markFilled(int positions) { length = Math.max(length, positions); }

    float[] keys(int layer) { return keys[layer]; }

    float[] values(int layer) { return values[layer]; }

    int kvDim() { return kvDim; }
}
