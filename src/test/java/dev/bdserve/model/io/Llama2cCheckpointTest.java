package dev.bdserve.model.io;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaTensorNames;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cCheckpointTest {
    @TempDir Path dir;

    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Number of fp32 values after the header. */
    static long floats(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen) {
        int hs = dim / heads, kv = kvHeads * hs;
        long v = Math.abs(vocab);
        long n = v * dim + (long) layers * (dim + dim * dim + 2L * kv * dim + (long) dim * dim + dim + 3L * hidden * dim) + dim
                + 2L * seqLen * (hs / 2);
        if (vocab < 0) n += v * dim;
        return n;
    }

    /** Writes a checkpoint whose value at float index i (after the header) is i (or random when seed >= 0). */
    static Path write(Path p, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen, long seed, int extraBytes)
            throws IOException {
        long n = floats(dim, hidden, layers, heads, kvHeads, vocab, seqLen);
        byte[] b = new byte[(int) (28 + n * 4 + extraBytes)];
        MemorySegment s = MemorySegment.ofArray(b);
        int[] h = {dim, hidden, layers, heads, kvHeads, vocab, seqLen};
        for (int i = 0; i < 7; i++) s.set(I32, 4L * i, h[i]);
        Random r = new Random(seed);
        for (long i = 0; i < n + extraBytes / 4; i++) s.set(F32, 28 + 4 * i, seed < 0 ? i : (float) r.nextGaussian());
        Files.write(p, b);
        return p;
    }

    @Test
    void tinySharedCheckpoint() throws IOException {
        int dim = 8, hidden = 12, layers = 2, heads = 2, kvHeads = 1, vocab = 10, seq = 4;
        Path p = write(dir.resolve("tiny.bin"), dim, hidden, layers, heads, kvHeads, vocab, seq, -1, 0);
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(p)) {
            LlamaConfig c = ck.config();
            assertEquals(new LlamaConfig(10, 8, 12, 2, 2, 1, 4, 4, 1e-5f, 10000.0, null, true, 1, List.of(2), "float32"), c);
            assertEquals(LlamaTensorNames.expectedShapes(c).keySet(), ck.names());
            assertFalse(ck.names().contains(LlamaTensorNames.LM_HEAD));
            for (var e : LlamaTensorNames.expectedShapes(c).entrySet())
                assertArrayEquals(e.getValue(), ck.shape(e.getKey()), e.getKey());

            // offsets (in floats): embedding 0..80
            Matrix emb = ck.matrix(LlamaTensorNames.EMBED);
            assertEquals(0f, emb.get(0, 0));
            assertEquals(79f, emb.get(9, 7));
            long off = 80;
            float[] n0 = ck.vector(LlamaTensorNames.inputNorm(0));
            assertEquals(off, (long) n0[0]);
            assertEquals(off + 8, (long) ck.vector(LlamaTensorNames.inputNorm(1))[0]);
            off += 2 * 8; // rms_att
            long wq = off;
            off += 2 * 64;
            long wk = off;
            off += 2 * 4 * 8;
            long wv = off;
            off += 2 * 4 * 8;
            long wo = off;
            off += 2 * 64;
            long rmsFfn = off;
            off += 2 * 8;
            long w1 = off;
            off += 2 * 96;
            long w2 = off;
            off += 2 * 96;
            long w3 = off;
            off += 2 * 96;
            long rmsFinal = off;

            // q: head_dim 4, half 2: new rows per head = old rows [0, 2, 1, 3]
            int[] perm = {0, 2, 1, 3, 4, 6, 5, 7};
            Matrix q1 = ck.matrix(LlamaTensorNames.q(1));
            for (int r = 0; r < 8; r++)
                for (int col = 0; col < 8; col++)
                    assertEquals(wq + 64 + perm[r] * 8L + col, (long) q1.get(r, col), "q row " + r);
            Matrix k0 = ck.matrix(LlamaTensorNames.k(0));
            assertEquals(4, k0.rows());
            for (int r = 0; r < 4; r++) assertEquals(wk + perm[r] * 8L, (long) k0.get(r, 0));
            // v, o not permuted
            assertEquals(wv + 32 + 3 * 8 + 5, (long) ck.matrix(LlamaTensorNames.v(1)).get(3, 5));
            assertEquals(wo + 2 * 8 + 1, (long) ck.matrix(LlamaTensorNames.o(0)).get(2, 1));
            assertEquals(rmsFfn + 8, (long) ck.vector(LlamaTensorNames.postAttentionNorm(1))[0]);
            assertEquals(w1 + 96 + 11 * 8 + 7, (long) ck.matrix(LlamaTensorNames.gate(1)).get(11, 7));
            Matrix down = ck.matrix(LlamaTensorNames.down(0));
            assertEquals(8, down.rows());
            assertEquals(12, down.cols());
            assertEquals(w2 + 7 * 12 + 11, (long) down.get(7, 11));
            assertEquals(w3 + 5, (long) ck.matrix(LlamaTensorNames.up(0)).get(0, 5));
            assertEquals(rmsFinal + 7, (long) ck.vector(LlamaTensorNames.FINAL_NORM)[7]);

            // a shard of q (rows 2..6, cols 3..5) equals the same slice of the whole
            Matrix s = ck.matrix(LlamaTensorNames.q(1), 2, 6, 3, 5);
            for (int r = 0; r < 4; r++) for (int col = 0; col < 2; col++) assertEquals(q1.get(r + 2, col + 3), s.get(r, col));
        }
    }

    @Test
    void unsharedClassifier() throws IOException {
        Path p = write(dir.resolve("u.bin"), 8, 12, 1, 2, 2, -10, 4, -1, 0);
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(p)) {
            assertFalse(ck.config().tieWordEmbeddings());
            assertEquals(10, ck.config().vocabSize());
            assertTrue(ck.names().contains(LlamaTensorNames.LM_HEAD));
            long n = floats(8, 12, 1, 2, 2, -10, 4);
            Matrix head = ck.matrix(LlamaTensorNames.LM_HEAD);
            assertEquals(n - 80, (long) head.get(0, 0));
            assertEquals(n - 1, (long) head.get(9, 7));
        }
    }

    /**
     * The permutation is the right one: interleaved RoPE on llama2.c weights and rotate-half RoPE on the
     * permuted weights give the same attention scores.
     */
    @Test
    void permutationPreservesAttentionScores() throws IOException {
        int dim = 16, heads = 2, hd = 8;
        Path p = write(dir.resolve("r.bin"), dim, 20, 1, heads, heads, 10, 8, 42, 0);
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(p)) {
            // the unpermuted llama2.c matrices, read directly from the file
            MemorySegment f = MemorySegment.ofArray(Files.readAllBytes(p));
            long wq = 28 + 4L * (10 * dim + dim), wk = wq + 4L * dim * dim;
            float[] qOld = new float[dim * dim], kOld = new float[dim * dim];
            MemorySegment.copy(f, F32, wq, qOld, 0, qOld.length);
            MemorySegment.copy(f, F32, wk, kOld, 0, kOld.length);
            float[] qNew = ck.matrix(LlamaTensorNames.q(0)).f32(), kNew = ck.matrix(LlamaTensorNames.k(0)).f32();
            Random r = new Random(1);
            float[] x = new float[dim], y = new float[dim];
            for (int i = 0; i < dim; i++) { x[i] = (float) r.nextGaussian(); y[i] = (float) r.nextGaussian(); }
            int px = 5, py = 2;
            double[] a = mul(qOld, x, dim), b = mul(kOld, y, dim), an = mul(qNew, x, dim), bn = mul(kNew, y, dim);
            for (int h = 0; h < heads; h++) {
                double sOld = 0, sNew = 0;
                double[] qa = ropeInterleaved(a, h * hd, hd, px), kb = ropeInterleaved(b, h * hd, hd, py);
                double[] qn = ropeHalf(an, h * hd, hd, px), kn = ropeHalf(bn, h * hd, hd, py);
                for (int i = 0; i < hd; i++) { sOld += qa[i] * kb[i]; sNew += qn[i] * kn[i]; }
                assertEquals(sOld, sNew, 1e-9 * (1 + Math.abs(sOld)), "head " + h);
            }
        }
    }

    static double[] mul(float[] w, float[] x, int n) {
        double[] y = new double[n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) y[i] += (double) w[i * n + j] * x[j];
        return y;
    }

    static double[] ropeInterleaved(double[] v, int off, int hd, int pos) {
        double[] o = new double[hd];
        for (int i = 0; i < hd / 2; i++) {
            double ang = pos * Math.pow(10000, -2.0 * i / hd), c = Math.cos(ang), s = Math.sin(ang);
            double a = v[off + 2 * i], b = v[off + 2 * i + 1];
            o[2 * i] = a * c - b * s;
            o[2 * i + 1] = a * s + b * c;
        }
        return o;
    }

    static double[] ropeHalf(double[] v, int off, int hd, int pos) {
        double[] o = new double[hd];
        int half = hd / 2;
        for (int i = 0; i < half; i++) {
            double ang = pos * Math.pow(10000, -2.0 * i / hd), c = Math.cos(ang), s = Math.sin(ang);
            double a = v[off + i], b = v[off + half + i];
            o[i] = a * c - b * s;
            o[half + i] = a * s + b * c;
        }
        return o;
    }

    @Test
    void fileTooLong() throws IOException {
        Path p = write(dir.resolve("long.bin"), 8, 12, 1, 2, 1, 10, 4, -1, 4);
        long expected = 28 + 4 * floats(8, 12, 1, 2, 1, 10, 4);
        var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.open(p));
        assertEquals(p + ": file is " + (expected + 4) + " bytes but the llama2.c header (dim=8 hidden_dim=12 n_layers=1 n_heads=2"
                + " n_kv_heads=1 vocab_size=10 seq_len=4) implies " + expected + " bytes (trailing data?)", e.getMessage());
    }

    @Test
    void fileTooShort() throws IOException {
        Path p = write(dir.resolve("short.bin"), 8, 12, 1, 2, 1, 10, 4, -1, 0);
        byte[] b = Files.readAllBytes(p);
        Files.write(p, Arrays.copyOf(b, b.length - 4));
        var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.open(p));
        assertTrue(e.getMessage().contains("file is " + (b.length - 4) + " bytes but the llama2.c header"), e.getMessage());
        assertTrue(e.getMessage().endsWith("implies " + b.length + " bytes (truncated?)"), e.getMessage());
    }

    @Test
    void unsharedVocabMissingClassifier() throws IOException {
        // written as shared, header then patched to say "unshared": the wcls array is missing
        Path p = write(dir.resolve("cls.bin"), 8, 12, 1, 2, 1, 10, 4, -1, 0);
        byte[] b = Files.readAllBytes(p);
        MemorySegment.ofArray(b).set(I32, 20, -10);
        Files.write(p, b);
        var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.open(p));
        assertTrue(e.getMessage().contains("(truncated?)"), e.getMessage());
    }

    @Test
    void badHeaders() throws IOException {
        Path p = dir.resolve("h.bin");
        Files.write(p, new byte[10]);
        assertEquals(p + ": file is 10 bytes, too short for the 28-byte llama2.c header",
                assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.open(p)).getMessage());
        Path q = write(dir.resolve("h2.bin"), 8, 12, 1, 3, 1, 10, 4, -1, 0);
        assertTrue(assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.open(q)).getMessage()
                .contains("dim must be n_heads × an even head size"));
        Path z = write(dir.resolve("h3.bin"), 8, 0, 1, 2, 1, 10, 4, -1, 0);
        assertTrue(assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.open(z)).getMessage()
                .contains("sizes must be positive"));
    }

    @Test
    void writtenAsHfAndReloadedIsIdentical() throws IOException {
        Path p = write(dir.resolve("m.bin"), 8, 12, 2, 2, 1, -10, 4, 7, 0);
        Path out = dir.resolve("hf");
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(p)) {
            HfModelWriter.write(out, ck, DType.F32);
            try (HfModelSource hf = HfModelSource.open(out)) {
                assertEquals(ck.config(), hf.config());
                assertEquals(ck.names(), hf.names());
                for (String n : ck.names()) {
                    assertArrayEquals(ck.shape(n), hf.shape(n), n);
                    if (ck.shape(n).length == 1) assertArrayEquals(ck.vector(n), hf.vector(n), n);
                    else assertArrayEquals(ck.matrix(n).f32(), hf.matrix(n).f32(), n);
                }
            }
        }
    }

    /** The real stories260K checkpoint; fails (does not skip) when the file is absent. */
    @Test
    void stories260K() {
        String env = System.getenv("BDSERVE_MODELS");
        Path models = Path.of(env == null || env.isBlank() ? "../shared/models" : env);
        Path p = models.resolve("stories260K/stories260K.bin");
        assertTrue(Files.isRegularFile(p), "missing " + p.toAbsolutePath() + " (set BDSERVE_MODELS)");
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(p)) {
            LlamaConfig c = ck.config();
            assertEquals(64, c.hiddenSize());
            assertEquals(172, c.intermediateSize());
            assertEquals(5, c.numLayers());
            assertEquals(8, c.numHeads());
            assertEquals(4, c.numKvHeads());
            assertEquals(8, c.headDim());
            assertEquals(512, c.vocabSize());
            assertEquals(512, c.maxPositions());
            assertTrue(c.tieWordEmbeddings());
            assertEquals(260_032, c.parameterCount());
            assertArrayEquals(new long[]{32, 64}, ck.shape(LlamaTensorNames.k(4)));
            float[] norm = ck.vector(LlamaTensorNames.FINAL_NORM);
            for (float v : norm) assertTrue(Float.isFinite(v) && v != 0f);
            // round trip through HF format in bf16 is within bf16 rounding
            Path out = dir.resolve("stories-hf");
            HfModelWriter.write(out, ck, DType.BF16);
            try (HfModelSource hf = HfModelSource.open(out)) {
                assertEquals("bfloat16", hf.config().torchDtype());
                Matrix a = ck.matrix(LlamaTensorNames.q(2)), b = hf.matrix(LlamaTensorNames.q(2));
                assertEquals(DType.BF16, b.dtype());
                for (int i = 0; i < a.rows(); i++)
                    for (int j = 0; j < a.cols(); j++)
                        assertEquals(a.get(i, j), b.get(i, j), Math.abs(a.get(i, j)) / 128 + 1e-30);
            }
        }
    }
}
