package dev.bdserve.lab.train;

import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.AdapterTools;
import dev.bdserve.lora.LoraModule;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tokenizer.Tokenizer;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The parameter-efficiency experiment of the BD-LoRA paper in miniature: ordinary LoRA at several ranks and
 * BD-LoRA (nblocks 2 and 4) at the parameter-matched ranks (spec §2: the largest multiple of nblocks whose BD
 * parameter count does not exceed the LoRA's), all seven projections, several seeds, on one language-modelling
 * task (held-out loss) and one accuracy task (greedy generation on held-out prompts). Writes results.csv,
 * README.md (table) and plot.png (own Java2D plot: parameters vs eval loss / accuracy).
 */
public final class TrainStudy {
    /** One configuration of the grid. */
    public record Config(String label, LoraSpec.Method method, int nblocks, int rank, int matchedLoraRank) {}

    /** One run's outcome. */
    public record Result(String task, Config config, long seed, long parameters, double evalLoss, double accuracy, double tokensPerS) {}

    /**
     * Settings of the study.
     *
     * @param loraRanks ranks of the LoRA curve
     * @param nblocks   BD block counts
     * @param firstSeed the first seed
     * @param seeds     seeds per configuration (firstSeed, firstSeed + 1, ...)
     * @param steps     optimizer steps per run
     * @param batch     sequences per step
     * @param seqLen    tokens per sequence
     * @param lr        peak learning rate
     * @param prompts   held-out prompts for the accuracy task
     */
    public record Settings(List<Integer> loraRanks, List<Integer> nblocks, long firstSeed, int seeds, int steps, int batch, int seqLen, double lr, int prompts, int threads) {
        public Settings {
            if (loraRanks.isEmpty() || seeds < 1 || steps < 1) throw new IllegalArgumentException("empty study");
            loraRanks = List.copyOf(loraRanks);
            nblocks = List.copyOf(nblocks);
        }
    }

    private TrainStudy() {}

    /** LoRA ranks, then for each nblocks the parameter-matched BD ranks. */
    public static List<Config> grid(LlamaConfig c, Settings s) {
        List<Config> out = new ArrayList<>();
        for (int r : s.loraRanks()) out.add(new Config("LoRA r" + r, LoraSpec.Method.LORA, 1, r, r));
        for (int n : s.nblocks())
            for (int r : s.loraRanks()) {
                long budget = 0, perRank = 0;
                for (LoraModule m : LoraModule.values()) { budget += (long) r * (m.in(c) + m.out(c)); perRank += AdapterTools.bdParameters(m, c, 1, n); }
                int br = (int) (budget / perRank / n * n);
                if (br >= n) out.add(new Config("BD" + n + " r" + br, LoraSpec.Method.BDLORA, n, br, r));
            }
        return out;
    }

    public static List<Result> run(Path modelPath, Tokenizer tok, Path lmData, Path accData, SynthTask accTask, Settings s, Path outDir, Consumer<String> log) {
        FrozenLlama base;
        try (TensorSource src = ModelFiles.open(modelPath)) { base = FrozenLlama.load(src); }
        LlamaBackprop bp = new LlamaBackprop(base);
        List<Config> grid = grid(base.config(), s);
        List<Result> results = new ArrayList<>();
        Map<String, TrainData.Split> splits = new LinkedHashMap<>();
        splits.put("lm", TrainData.load(lmData, tok, s.seqLen(), 0.05));
        splits.put(accTask.cliName(), TrainData.load(accData, tok, s.seqLen(), 0.05));
        List<String> prompts = SynthData.heldOut(accData, 0.05).stream().limit(s.prompts()).map(TrainData.PromptCompletion::prompt).toList();
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(modelPath), TpGroup.Options.single(1))) {
            for (var e : splits.entrySet()) {
                String task = e.getKey();
                for (long seed = s.firstSeed(); seed < s.firstSeed() + s.seeds(); seed++)
                    for (Config cfg : grid) {
                        LoraSpec spec = new LoraSpec(cfg.method(), cfg.rank(), cfg.nblocks(), 2.0 * cfg.rank(), false, EnumSet.allOf(LoraModule.class));
                        TrainableAdapter a = new TrainableAdapter(spec, base.config()).initPeft(seed);
                        TrainOptions opt = new TrainOptions(s.steps(), s.batch(), s.lr(), Math.max(1, s.steps() / 10), 0.1, 0, 1.0, seed, s.threads(), 0, 0);
                        double loss, tps, acc = Double.NaN;
                        try (LoraTrainer t = new LoraTrainer(bp, a, e.getValue(), opt)) {
                            long t0 = System.nanoTime(), toks = 0;
                            for (int i = 0; i < s.steps(); i++) toks += t.trainStep().tokens();
                            tps = toks / ((System.nanoTime() - t0) / 1e9);
                            loss = t.evaluate(e.getValue().eval());
                        }
                        if (!task.equals("lm")) {
                            Path dir = outDir.resolve("tmp-adapter");
                            a.writePeft(dir, "stories260K");
                            int id = g.addAdapter(PeftAdapterLoader.load("study", dir, base.config(), 1024));
                            acc = accTask.score(SynthData.complete(g, tok, prompts, id, 128)).accuracy();
                            g.removeAdapter(id);
                        }
                        Result r = new Result(task, cfg, seed, a.parameterCount(), loss, acc, tps);
                        results.add(r);
                        log.accept(String.format(Locale.ROOT, "%-8s seed %d %-10s %,7d params: eval loss %.4f%s (%,.0f tok/s)", task, seed, cfg.label(),
                                r.parameters(), loss, Double.isNaN(acc) ? "" : String.format(Locale.ROOT, ", accuracy %.3f", acc), tps));
                        write(results, outDir, accTask, s);
                    }
            }
        }
        return results;
    }

    // ---------------------------------------------------------------- reports

    private record Agg(String task, Config config, long parameters, double lossMean, double lossStd, double accMean, double accStd, int n) {}

    private static List<Agg> aggregate(List<Result> rs) {
        Map<String, List<Result>> by = new LinkedHashMap<>();
        for (Result r : rs) by.computeIfAbsent(r.task() + "|" + r.config().label(), k -> new ArrayList<>()).add(r);
        List<Agg> out = new ArrayList<>();
        for (List<Result> g : by.values()) {
            double[] l = g.stream().mapToDouble(Result::evalLoss).toArray(), a = g.stream().mapToDouble(Result::accuracy).toArray();
            out.add(new Agg(g.get(0).task(), g.get(0).config(), g.get(0).parameters(), mean(l), std(l), mean(a), std(a), g.size()));
        }
        return out;
    }

    private static double mean(double[] x) { double s = 0; for (double v : x) s += v; return s / x.length; }
    private static double std(double[] x) {
        if (x.length < 2) return 0;
        double m = mean(x), s = 0;
        for (double v : x) s += (v - m) * (v - m);
        return Math.sqrt(s / (x.length - 1));
    }

    /** Reads results.csv back (to redraw the table and plot without training). */
    public static List<Result> readCsv(Path csv) {
        try {
            List<Result> out = new ArrayList<>();
            for (String line : Files.readAllLines(csv).subList(1, Files.readAllLines(csv).size())) {
                String[] f = line.split(",", -1);
                LoraSpec.Method m = LoraSpec.Method.parse(f[1]);
                int n = Integer.parseInt(f[2]), r = Integer.parseInt(f[3]);
                Config c = new Config((m == LoraSpec.Method.LORA ? "LoRA r" : "BD" + n + " r") + r, m, n, r, Integer.parseInt(f[4]));
                out.add(new Result(f[0], c, Long.parseLong(f[5]), Long.parseLong(f[6]), Double.parseDouble(f[7]),
                        f[8].isEmpty() ? Double.NaN : Double.parseDouble(f[8]), Double.parseDouble(f[9])));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static void write(List<Result> rs, Path dir, SynthTask accTask, Settings s) {
        try {
            Files.createDirectories(dir);
            StringBuilder csv = new StringBuilder("task,method,nblocks,rank,matched_lora_rank,seed,parameters,eval_loss,accuracy,tokens_per_s\n");
            for (Result r : rs)
                csv.append(String.format(Locale.ROOT, "%s,%s,%d,%d,%d,%d,%d,%.6f,%s,%.1f%n", r.task(), r.config().method().name().toLowerCase(Locale.ROOT),
                        r.config().nblocks(), r.config().rank(), r.config().matchedLoraRank(), r.seed(), r.parameters(), r.evalLoss(),
                        Double.isNaN(r.accuracy()) ? "" : String.format(Locale.ROOT, "%.4f", r.accuracy()), r.tokensPerS()));
            Files.writeString(dir.resolve("results.csv"), csv);
            List<Agg> agg = aggregate(rs);
            StringBuilder md = new StringBuilder();
            md.append(String.format(Locale.ROOT, "| task | adapter | matched to | parameters | eval loss (mean ± sd) | %s accuracy | seeds |%n|---|---|---|---:|---:|---:|---:|%n", accTask.cliName()));
            for (Agg a : agg)
                md.append(String.format(Locale.ROOT, "| %s | %s | LoRA r%d | %,d | %.4f ± %.4f | %s | %d |%n", a.task(), a.config().label(), a.config().matchedLoraRank(),
                        a.parameters(), a.lossMean(), a.lossStd(), Double.isNaN(a.accMean()) ? "–" : String.format(Locale.ROOT, "%.3f ± %.3f", a.accMean(), a.accStd()), a.n()));
            Files.writeString(dir.resolve("table.md"), md);
            plot(agg, dir.resolve("plot.png"), accTask);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Two panels (LM eval loss, task accuracy) against adapter parameters (log scale), one series per method. */
    static void plot(List<Agg> agg, Path file, SynthTask accTask) throws IOException {
        int W = 1620, H = 460;
        BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        String[] tasks = {"lm", accTask.cliName(), accTask.cliName()};
        String[] ylabels = {"held-out loss, swap-text (LM)", "held-out loss, " + accTask.cliName() + " completions",
                accTask.cliName() + " accuracy (greedy, held-out prompts)"};
        for (int p = 0; p < 3; p++) {
            final String task = tasks[p];
            final boolean acc = p == 2;
            List<Agg> pts = agg.stream().filter(a -> a.task().equals(task)).toList();
            if (pts.isEmpty()) continue;
            int x0 = 80 + p * 540, y0 = 40, pw = 420, ph = 340;
            double xmin = Double.MAX_VALUE, xmax = 0, ymin = Double.MAX_VALUE, ymax = -Double.MAX_VALUE;
            for (Agg a : pts) {
                xmin = Math.min(xmin, Math.log10(a.parameters())); xmax = Math.max(xmax, Math.log10(a.parameters()));
                double y = acc ? a.accMean() : a.lossMean(), e = acc ? a.accStd() : a.lossStd();
                ymin = Math.min(ymin, y - e); ymax = Math.max(ymax, y + e);
            }
            double padX = Math.max(0.05, (xmax - xmin) * 0.08), padY = Math.max(1e-3, (ymax - ymin) * 0.1);
            xmin -= padX; xmax += padX; ymin -= padY; ymax += padY;
            if (acc) { ymin = 0; ymax = 1.05; }
            g.setColor(Color.BLACK);
            g.drawRect(x0, y0, pw, ph);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            for (int k = 0; k <= 4; k++) {
                double yv = ymin + (ymax - ymin) * k / 4;
                int yy = y0 + ph - (int) (ph * k / 4.0);
                g.drawString(String.format(Locale.ROOT, acc ? "%.2f" : "%.3f", yv), x0 - 50, yy + 4);
                double xv = xmin + (xmax - xmin) * k / 4;
                int xx = x0 + (int) (pw * k / 4.0);
                g.drawString(String.format(Locale.ROOT, "%,.0f", Math.pow(10, xv)), xx - 20, y0 + ph + 18);
            }
            g.drawString("adapter parameters (log scale)", x0 + pw / 2 - 90, y0 + ph + 38);
            g.drawString(ylabels[p], x0, y0 - 10);
            Color[] colors = {new Color(31, 119, 180), new Color(214, 39, 40), new Color(44, 160, 44)};
            Map<String, List<Agg>> series = new LinkedHashMap<>();
            for (Agg a : pts) series.computeIfAbsent(a.config().method() == LoraSpec.Method.LORA ? "LoRA" : "BD-LoRA n=" + a.config().nblocks(), k -> new ArrayList<>()).add(a);
            int si = 0;
            for (var e : series.entrySet()) {
                g.setColor(colors[si % colors.length]);
                g.setStroke(new BasicStroke(2f));
                int px = -1, py = -1;
                List<Agg> sorted = e.getValue().stream().sorted((a, b) -> Long.compare(a.parameters(), b.parameters())).toList();
                for (Agg a : sorted) {
                    double y = acc ? a.accMean() : a.lossMean(), err = acc ? a.accStd() : a.lossStd();
                    int xx = x0 + (int) (pw * (Math.log10(a.parameters()) - xmin) / (xmax - xmin));
                    int yy = y0 + ph - (int) (ph * (y - ymin) / (ymax - ymin));
                    int ey = (int) (ph * err / (ymax - ymin));
                    g.drawLine(xx, yy - ey, xx, yy + ey);
                    if (si == 0) g.fillOval(xx - 4, yy - 4, 9, 9); else if (si == 1) g.fillRect(xx - 4, yy - 4, 9, 9);
                    else g.fillPolygon(new int[]{xx, xx - 5, xx + 5}, new int[]{yy - 5, yy + 4, yy + 4}, 3);
                    if (px >= 0) g.drawLine(px, py, xx, yy);
                    px = xx; py = yy;
                }
                g.drawString(e.getKey(), x0 + pw - 110, y0 + 20 + 16 * si);
                si++;
            }
        }
        g.dispose();
        javax.imageio.ImageIO.write(img, "png", file.toFile());
    }
}
