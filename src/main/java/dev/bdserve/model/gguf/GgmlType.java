package dev.bdserve.model.gguf;

/**
 * The tensor types of GGUF files that bdserve reads, with their ids in ggml's {@code enum ggml_type} and their
 * block layout: a row of a tensor is a whole number of blocks of {@link #blockSize} weights stored in
 * {@link #blockBytes} bytes (1 weight per block for the plain float types).
 */
public enum GgmlType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),     // fp16 scale d, 32 nibbles: w = (q − 8)·d
    Q4_1(3, 32, 20),     // fp16 d and m, 32 nibbles: w = q·d + m
    Q5_0(6, 32, 22),     // fp16 d, 32 high bits, 32 nibbles: w = (q − 16)·d
    Q5_1(7, 32, 24),     // fp16 d and m, 32 high bits, 32 nibbles: w = q·d + m
    Q8_0(8, 32, 34),     // fp16 d, 32 int8: w = q·d
    Q4_K(12, 256, 144),  // super-block: fp16 d, dmin; 12 bytes of 6-bit sub-block scales and mins; 128 bytes of nibbles
    Q5_K(13, 256, 176),  // as Q4_K plus 32 bytes of high bits
    Q6_K(14, 256, 210),  // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 sub-block scales, fp16 d
    BF16(30, 1, 2);

    /** ggml's type id, as stored in a GGUF tensor info. */
    public final int id;
    /** Weights per block. */
    public final int blockSize;
    /** Bytes per block. */
    public final int blockBytes;

    GgmlType(int id, int blockSize, int blockBytes) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** The type of a ggml type id, or null for one bdserve does not read. */
    public static GgmlType ofId(long id) {
        for (GgmlType t : values()) if (t.id == id) return t;
        return null;
    }

    public boolean quantized() { return blockSize > 1; }

    /** Bytes that {@code n} weights take; {@code n} must be a whole number of blocks. */
    public long bytes(long n) {
        if (n % blockSize != 0) throw new IllegalArgumentException(n + " weights are not a whole number of " + name() + " blocks of " + blockSize);
        return n / blockSize * blockBytes;
    }
}
