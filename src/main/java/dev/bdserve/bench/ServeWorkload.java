package dev.bdserve.bench;

import dev.bdserve.bench.ServeBench.Assignment;
import dev.bdserve.bench.ServeBench.Config;
import dev.bdserve.bench.ServeBench.Prompt;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** What {@link ServeBench} sends and when: vLLM's random dataset (prompts, lengths, adapters) and its arrival gaps. */
public final class ServeWorkload {
    /** Short, common English words: each is one token in Llama-family vocabularies, so word count ≈ token count. */
    private static final String[] WORDS = ("the of and to in is was for on that with as it by at from his he be an are "
            + "this had not but have which were or one all they her she you we there been their has time would when "
            + "who more will if no out so said what up its about into than them can only other new some could these "
            + "two may first then do any like my now over such our man me even most made after also did many before "
            + "must through back years where much your way well down should because each just those people how too "
            + "little state good very make world still own see men work long get here between both life being under "
            + "never day same another know while last might us great old year off come since against go came right "
            + "used take three small house story girl boy park play found tree sun happy friend").split(" ");

    private ServeWorkload() {}

    /** The random dataset: prompts of random words, lengths drawn around the targets, adapters assigned. */
    public static List<Prompt> randomDataset(Config c) {
        Random rnd = new Random(c.seed());
        List<Prompt> out = new ArrayList<>(c.numPrompts());
        double[] zipfCdf = null;
        if (c.assignment() == Assignment.ZIPF && !c.loraModules().isEmpty()) {
            int n = c.loraModules().size();
            zipfCdf = new double[n];
            double sum = 0;
            for (int i = 0; i < n; i++) sum += 1.0 / (i + 1);
            double acc = 0;
            for (int i = 0; i < n; i++) { acc += 1.0 / (i + 1) / sum; zipfCdf[i] = acc; }
        }
        for (int i = 0; i < c.numPrompts(); i++) {
            int in = drawLen(rnd, c.inputLen(), c.rangeRatio());
            int outLen = drawLen(rnd, c.outputLen(), c.rangeRatio());
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < in; w++) {
                if (w > 0) sb.append(' ');
                sb.append(WORDS[rnd.nextInt(WORDS.length)]);
            }
            String model = c.model();
            List<String> mods = c.loraModules();
            if (!mods.isEmpty()) {
                model = switch (c.assignment()) {
                    case RANDOM -> mods.get(rnd.nextInt(mods.size()));
                    case ROUND_ROBIN -> mods.get(i % mods.size());
                    case ZIPF -> {
                        double u = rnd.nextDouble();
                        int k = 0;
                        while (k < zipfCdf.length - 1 && u > zipfCdf[k]) k++;
                        yield mods.get(k);
                    }
                };
            }
            out.add(new Prompt(sb.toString(), in, outLen, model));
        }
        return out;
    }

    private static int drawLen(Random rnd, int len, double ratio) {
        int lo = Math.max(1, (int) Math.floor(len * (1 - ratio)));
        int hi = Math.max(lo, (int) Math.ceil(len * (1 + ratio)));
        return lo + rnd.nextInt(hi - lo + 1);
    }

    /**
     * Inter-arrival gaps in seconds: gamma(shape = burstiness, scale = 1 / (rate · burstiness)), so the mean
     * rate is {@code rate} for any burstiness; all zero for an infinite rate (vLLM's convention).
     */
    public static double[] arrivalGaps(int n, double rate, double burstiness, long seed) {
        double[] gaps = new double[n];
        if (Double.isInfinite(rate)) return gaps;
        Random rnd = new Random(seed ^ 0x5DEECE66DL);
        double theta = 1.0 / (rate * burstiness);
        for (int i = 0; i < n; i++) gaps[i] = gamma(rnd, burstiness) * theta;
        return gaps;
    }

    /** A gamma(shape, 1) variate (Marsaglia and Tsang 2000; shape < 1 by the boost u^(1/shape)). */
    static double gamma(Random rnd, double shape) {
        if (shape < 1) return gamma(rnd, shape + 1) * Math.pow(rnd.nextDouble(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.sqrt(9 * d);
        while (true) {
            double x = rnd.nextGaussian(), v = 1 + c * x;
            if (v <= 0) continue;
            v = v * v * v;
            double u = rnd.nextDouble();
            if (u < 1 - 0.0331 * x * x * x * x) return d * v;
            if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
        }
    }
}
