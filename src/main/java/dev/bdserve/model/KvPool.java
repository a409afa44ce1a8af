package dev.bdserve.model;

/**
 * The paged KV cache of one rank: a pool of blocks of {@code blockSize} positions, each holding the keys
 * and values of this rank's KV heads for every layer. Sequences own lists of blocks (block tables);
 * which blocks belong to whom is decided by rank 0's block manager and sent with every step, so every
 * rank of a TP group uses the same block numbers for its own KV heads.
 */
public final class KvPool {
    private final int layers;
    private final int kvDim;      // localKvHeads × headDim
    private final int blockSize;  // positions per block
    private int numBlocks;
    private float[][] keys;       // [layer][numBlocks × kvDim × blockSize], RoPE applied; transposed inside a block
                                  // so attention scores run with vector lanes over positions (AttentionOps)
    private float[][] values;     // [layer][numBlocks × kvHeads × blockSize × headDim]: head-major inside a block

    public KvPool(int layers, int kvDim, int blockSize, int numBlocks) {
        if (blockSize < 1 || numBlocks < 1) throw new IllegalArgumentException("block size and block count must be ≥ 1");
        long floats = (long) numBlocks * blockSize * kvDim;
        if (floats > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("KV pool of " + numBlocks + " blocks is too large for one array per layer; lower the KV budget");
        this.layers = layers;
        this.kvDim = kvDim;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.keys = new float[layers][(int) floats];
        this.values = new float[layers][(int) floats];
    }

    /** Bytes one block takes on this rank (keys and values of all layers). */
    public static long blockBytes(int layers, int kvDim, int blockSize) { return 2L * layers * blockSize * kvDim * Float.BYTES; }

    public int blockSize() { return blockSize; }
    public int numBlocks() { return numBlocks; }
    public int kvDim() { return kvDim; }
    public int layers() { return layers; }
    public long bytes() { return (long) numBlocks * blockBytes(layers, kvDim, blockSize); }

    float[] keys(int layer) { return keys[layer]; }
    float[] values(int layer) { return values[layer]; }

    /** Grows a private pool (standalone caches only). */
    void grow(int blocks) {
        if (blocks <= numBlocks) return;
        int n = blocks * blockSize * kvDim;
        for (int l = 0; l < layers; l++) {
            keys[l] = java.util.Arrays.copyOf(keys[l], n);
            values[l] = java.util.Arrays.copyOf(values[l], n);
        }
        numBlocks = blocks;
    }
}
