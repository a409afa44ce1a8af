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
    private final KvDtype dtype;
    private int numBlocks;
    // [layer][numBlocks × kvDim × blockSize] keys, RoPE applied, transposed inside a block so attention scores run
    // with vector lanes over positions (AttentionOps); [layer][numBlocks × kvHeads × blockSize × headDim] values,
    // head-major inside a block. fp32 arrays, or bf16 bit patterns for a BF16 pool (the other pair is null).
    private float[][] keys, values;
    private short[][] keysBf16, valuesBf16;

    public KvPool(int layers, int kvDim, int blockSize, int numBlocks) { this(layers, kvDim, blockSize, numBlocks, KvDtype.F32); }

    public KvPool(int layers, int kvDim, int blockSize, int numBlocks, KvDtype dtype) {
        if (blockSize < 1 || numBlocks < 1) throw new IllegalArgumentException("block size and block count must be ≥ 1");
        long values = (long) numBlocks * blockSize * kvDim;
        if (values > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("KV pool of " + numBlocks + " blocks is too large for one array per layer; lower the KV budget");
        this.layers = layers;
        this.kvDim = kvDim;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.dtype = dtype;
        if (dtype == KvDtype.BF16) {
            this.keysBf16 = new short[layers][(int) values];
            this.valuesBf16 = new short[layers][(int) values];
        } else {
            this.keys = new float[layers][(int) values];
            this.values = new float[layers][(int) values];
        }
    }

    /** Bytes one block takes on this rank (keys and values of all layers) in fp32. */
    public static long blockBytes(int layers, int kvDim, int blockSize) { return blockBytes(layers, kvDim, blockSize, KvDtype.F32); }

    /** Bytes one block takes on this rank (keys and values of all layers). */
    public static long blockBytes(int layers, int kvDim, int blockSize, KvDtype dtype) { return 2L * layers * blockSize * kvDim * dtype.bytes(); }

    public int blockSize() { return blockSize; }
    public int numBlocks() { return numBlocks; }
    public int kvDim() { return kvDim; }
    public int layers() { return layers; }
    public KvDtype dtype() { return dtype; }
    public long bytes() { return (long) numBlocks * blockBytes(layers, kvDim, blockSize, dtype); }

    float[] keys(int layer) { return keys[layer]; }
    float[] values(int layer) { return values[layer]; }
    short[] keysBf16(int layer) { return keysBf16[layer]; }
    short[] valuesBf16(int layer) { return valuesBf16[layer]; }

    /** Grows a private pool (standalone caches only). */
    void grow(int blocks) {
        if (blocks <= numBlocks) return;
        int n = blocks * blockSize * kvDim;
        for (int l = 0; l < layers; l++) {
            if (dtype == KvDtype.BF16) {
                keysBf16[l] = java.util.Arrays.copyOf(keysBf16[l], n);
                valuesBf16[l] = java.util.Arrays.copyOf(valuesBf16[l], n);
            } else {
                keys[l] = java.util.Arrays.copyOf(keys[l], n);
                values[l] = java.util.Arrays.copyOf(values[l], n);
            }
        }
        numBlocks = blocks;
    }
}
