package dev.bdserve.engine;

import dev.bdserve.parallel.CommStats;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The fixed workload the tensor-parallel equivalence tests run on a group (threads or mpi transport): a prefill
 * of several sequences of random lengths, each with its adapter, then 3 greedy decode steps. Returns every step's
 * logits so that groups of different TP degrees can be compared. Between the prefill and the decode steps every
 * rank collects garbage ({@link ModelRunner#collectGarbage}, as benchmarks do), which must leave the group in step.
 */
public final class TpScript {
    private TpScript() {}

    /** The collectives of the script's last decode step (rank 0). */
    public static CommStats lastDecode;

    public static List<float[]> run(ModelRunner g, int[] adapterOfSeq) {
        int vocab = g.config().vocabSize(), nseq = adapterOfSeq.length;
        SplittableRandom r = new SplittableRandom(3);
        int[] lens = new int[nseq];
        List<Integer> tok = new ArrayList<>(), pos = new ArrayList<>(), seq = new ArrayList<>(), ad = new ArrayList<>(), rows = new ArrayList<>();
        for (int s = 0; s < nseq; s++) {
            lens[s] = 1 + r.nextInt(9);
            for (int p = 0; p < lens[s]; p++) {
                tok.add(r.nextInt(vocab)); pos.add(p); seq.add(s); ad.add(adapterOfSeq[s]);
                if (p == lens[s] - 1) rows.add(tok.size() - 1);
            }
        }
        BlockManager bm = new BlockManager(g.kvBlocks(), g.kvBlockSize());
        int[][] tables = new int[nseq][];
        for (int s = 0; s < nseq; s++) tables[s] = bm.allocateTable(lens[s] + 4);
        List<float[]> out = new ArrayList<>();
        float[] logits = new float[nseq * vocab];
        g.forward(new StepBatch(ints(tok), ints(pos), ints(seq), ints(ad), ints(rows), tables), logits);
        out.add(logits.clone());
        g.collectGarbage();
        for (int step = 0; step < 3; step++) {
            int[] t = new int[nseq], p = new int[nseq], sq = new int[nseq], rw = new int[nseq];
            for (int s = 0; s < nseq; s++) {
                t[s] = Sampler.argmax(logits, s * vocab, vocab);
                p[s] = lens[s] + step; sq[s] = s; rw[s] = s;
            }
            CommStats before = g.commStats().snapshot();
            g.forward(new StepBatch(t, p, sq, adapterOfSeq.clone(), rw, tables), logits);
            lastDecode = g.commStats().minus(before);
            out.add(logits.clone());
        }
        return out;
    }

    /** Null when every step's logits agree within 1e-4 × max |logit|, else where they first differ. */
    public static String compare(List<float[]> ref, List<float[]> got) {
        for (int s = 0; s < ref.size(); s++) {
            float max = 0;
            for (float v : ref.get(s)) max = Math.max(max, Math.abs(v));
            for (int i = 0; i < ref.get(s).length; i++)
                if (Math.abs(ref.get(s)[i] - got.get(s)[i]) > 1e-4 * max)
                    return "step " + s + " logit " + i + ": " + got.get(s)[i] + " vs " + ref.get(s)[i];
        }
        return null;
    }

    /** Null when every step's logits are within 2 % of its largest and some differ; else what is wrong. */
    public static String compareBf16(List<float[]> ref, List<float[]> got) {
        boolean differ = false;
        for (int s = 0; s < ref.size(); s++) {
            float max = 0;
            for (float v : ref.get(s)) max = Math.max(max, Math.abs(v));
            for (int i = 0; i < ref.get(s).length; i++) {
                float d = Math.abs(ref.get(s)[i] - got.get(s)[i]);
                if (!(d <= 0.02 * max)) return "step " + s + " logit " + i + ": " + got.get(s)[i] + " vs " + ref.get(s)[i];
                differ |= d > 0;
            }
        }
        return differ ? null : "logits equal the Java kernels' bit for bit: the native products did not run";
    }

    static int[] ints(List<Integer> l) { return l.stream().mapToInt(Integer::intValue).toArray(); }
}
