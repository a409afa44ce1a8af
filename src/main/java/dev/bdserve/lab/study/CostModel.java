package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Per-step cost model of tensor-parallel multi-LoRA decode:
 * <pre>step = compute(batch, rank, strategy) + Σ_collectives count × (α + β·bytes)</pre>
 * fitted by least squares on the study's measurements, then evaluated with GPU constants (fixed in
 * {@link Gpu#A100_NVLINK}, sources in docs/bench/cost-model.md) for Llama-3.1-8B and -70B at TP 8.
 */
public final class CostModel {
    private CostModel() {}

    /** A least-squares fit y ≈ X·coef, with its R² and RMS relative error. */
    public record Fit(String[] names, double[] coef, double r2, double rmsRelError, int n) {
        public double predict(double[] x) {
            double s = 0;
            for (int i = 0; i < x.length; i++) s += coef[i] * x[i];
            return s;
        }
    }

    /** Ordinary least squares through the origin (normal equations, Gaussian elimination with partial pivoting). */
    public static Fit leastSquares(String[] names, List<double[]> xs, List<Double> ys) {
        int k = names.length, n = xs.size();
        if (n < k) throw new IllegalArgumentException("need at least " + k + " measurements to fit " + String.join(", ", names) + ", have " + n);
        double[][] a = new double[k][k + 1];
        for (int r = 0; r < n; r++) {
            double[] x = xs.get(r);
            for (int i = 0; i < k; i++) {
                for (int j = 0; j < k; j++) a[i][j] += x[i] * x[j];
                a[i][k] += x[i] * ys.get(r);
            }
        }
        // a column with no variation at all (e.g. a feature that is zero everywhere) is pinned to 0
        for (int i = 0; i < k; i++) if (a[i][i] == 0) { a[i][i] = 1; a[i][k] = 0; }
        for (int c = 0; c < k; c++) {
            int p = c;
            for (int r = c + 1; r < k; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
            double[] t = a[c]; a[c] = a[p]; a[p] = t;
            if (Math.abs(a[c][c]) < 1e-300) throw new IllegalArgumentException("the features " + String.join(", ", names) + " are collinear on these measurements");
            for (int r = 0; r < k; r++) {
                if (r == c) continue;
                double f = a[r][c] / a[c][c];
                for (int j = c; j <= k; j++) a[r][j] -= f * a[c][j];
            }
        }
        double[] coef = new double[k];
        for (int i = 0; i < k; i++) coef[i] = a[i][k] / a[i][i];
        double mean = ys.stream().mapToDouble(Double::doubleValue).average().orElse(0), ssTot = 0, ssRes = 0, rel = 0;
        Fit f = new Fit(names, coef, 0, 0, n);
        for (int r = 0; r < n; r++) {
            double y = ys.get(r), p = f.predict(xs.get(r));
            ssTot += (y - mean) * (y - mean);
            ssRes += (y - p) * (y - p);
            if (y != 0) rel += ((p - y) / y) * ((p - y) / y);
        }
        return new Fit(names, coef, ssTot == 0 ? 1 : 1 - ssRes / ssTot, Math.sqrt(rel / n), n);
    }

    /** Fits on the study's rows: α, β per transport (collective time), and one compute model for the machine. */
    public record Fitted(Map<String, Fit> comm, Fit compute, List<String> checks) {}

    public static Fitted fit(List<JsonNode> rows) {
        Map<String, List<double[]>> cx = new LinkedHashMap<>();
        Map<String, List<Double>> cy = new LinkedHashMap<>();
        List<double[]> px = new ArrayList<>();
        List<Double> py = new ArrayList<>();
        for (JsonNode j : rows) {
            if (j.has("error") || !j.has("decode_ms_per_step")) continue;
            double step = j.path("decode_ms_per_step").asDouble(), coll = j.path("collective_ms_per_decode_step").asDouble();
            int tp = j.path("tp").asInt();
            if (tp >= 2) {
                String t = j.path("transport").asText();
                cx.computeIfAbsent(t, k -> new ArrayList<>()).add(new double[] {j.path("collectives_per_step_total").asDouble(),
                        j.path("collective_bytes_per_step_total").asDouble() / 1e6});
                cy.computeIfAbsent(t, k -> new ArrayList<>()).add(coll);
            }
            px.add(computeFeatures(j));
            py.add(step - coll);
        }
        Map<String, Fit> comm = new LinkedHashMap<>();
        List<String> checks = new ArrayList<>();
        for (String t : cx.keySet()) {
            try {
                comm.put(t, leastSquares(new String[] {"alpha_ms_per_collective", "beta_ms_per_MB"}, cx.get(t), cy.get(t)));
            } catch (IllegalArgumentException e) {
                checks.add(t + ": no fit (" + e.getMessage() + ")");
            }
        }
        Fit compute = leastSquares(new String[] {"ms_per_weight_GB", "ms_per_dense_GFLOP", "ms_per_lora_GFLOP"}, px, py);
        return new Fitted(comm, compute, checks);
    }

    /** Features of the compute model: rank 0's weight bytes (GB), dense GFLOPs of the batch, LoRA GFLOPs. */
    static double[] computeFeatures(JsonNode j) {
        double wGB = j.path("weight_bytes_per_step_rank0").asDouble() / 1e9;
        double denseGflop = 2.0 * j.path("params").asDouble() / j.path("tp").asInt() * j.path("batch").asInt() / 1e9;
        double loraGflop = j.path("lora_flops_per_step_rank0").asDouble() / 1e9;
        return new double[] {wGB, denseGflop, loraGflop};
    }

    // ---------------------------------------------------------------- GPU extrapolation

    /**
     * GPU constants, fixed before the comparison (sources in docs/bench/cost-model.md).
     *
     * @param hbmGBs         HBM bandwidth per GPU
     * @param bf16Tflops     dense bf16 tensor-core peak per GPU
     * @param linkGBsPerDir  NVLink bandwidth per GPU per direction
     * @param alphaUs        fixed time of one small collective (launch + synchronisation)
     */
    public record Gpu(String name, double hbmGBs, double bf16Tflops, double linkGBsPerDir, double alphaUs) {
        public static final Gpu A100_NVLINK = new Gpu("8x A100-SXM4-80GB, NVLink 3", 2039, 312, 300, 10);

        public Gpu withAlpha(double us) { return new Gpu(name, hbmGBs, bf16Tflops, linkGBsPerDir, us); }
    }

    /** The Llama shapes of the extrapolation. */
    public record Shape(String name, int hidden, int layers, int ffn, int heads, int kvHeads, int vocab) {
        public static final Shape LLAMA_31_8B = new Shape("Llama-3.1-8B", 4096, 32, 14336, 32, 8, 128256);
        public static final Shape LLAMA_31_70B = new Shape("Llama-3.1-70B", 8192, 80, 28672, 64, 8, 128256);

        int headDim() { return hidden / heads; }
        int kvDim() { return kvHeads * headDim(); }

        /** Weights of one layer's seven projections. */
        long layerParams() { return (long) hidden * (hidden + 2L * kvDim()) + (long) hidden * hidden + 3L * hidden * ffn; }

        /** All matrix weights the forward pass reads (layers and LM head; the embedding is a lookup). */
        long matmulParams() { return layers * layerParams() + (long) vocab * hidden; }

        /** (d_in, d_out, column-parallel) of the seven projections. */
        int[][] modules() {
            return new int[][] {{hidden, hidden, 1}, {hidden, kvDim(), 1}, {hidden, kvDim(), 1}, {hidden, hidden, 0},
                    {hidden, ffn, 1}, {hidden, ffn, 1}, {ffn, hidden, 0}};
        }

        /** Dense LoRA parameters of all seven projections at rank r. */
        long loraParams(int r) {
            long p = 0;
            for (int[] m : modules()) p += (long) r * (m[0] + m[1]);
            return layers * p;
        }

        /** BD-LoRA parameters at rank r, n blocks (spec §2). */
        long bdParams(int r, int n) {
            long p = 0;
            for (int[] m : modules()) p += m[2] == 1 ? (long) r * (m[0] + m[1] / n) : (long) r * (m[0] / n + m[1]);
            return layers * p;
        }

        /** The largest multiple of n whose BD parameter count does not exceed the dense adapter's at rank r. */
        int parameterMatchedBdRank(int r, int n) {
            long budget = loraParams(r);
            int best = 0;
            for (int br = n; bdParams(br, n) <= budget; br += n) best = br;
            return best;
        }
    }

    /** One decode step of the extrapolation, in µs, split into its parts. */
    public record Step(double weightsUs, double kvUs, double loraUs, double baseCollUs, double loraCollUs, int collectives) {
        public double totalUs() { return weightsUs + kvUs + loraUs + baseCollUs + loraCollUs; }
    }

    /**
     * A decode step at TP n on the GPU: weights, KV cache and adapter bytes streamed at the HBM bandwidth
     * (roofline: max of bytes/bandwidth and FLOPs/peak per part), plus every collective at α + bytes/link.
     *
     * @param strategy  "base", "slora" (dense rank r, S-LoRA sharding) or "bdlora" (BD rank r, n blocks)
     * @param adapters  distinct adapters in the batch (each one's weights are read once per step)
     */
    public static Step decodeStep(Gpu g, Shape s, int n, int batch, int ctx, String strategy, int r, int adapters) {
        double bw = g.hbmGBs() * 1e3;                        // bytes per µs
        double flopsPerUs = g.bf16Tflops() * 1e6;
        double wBytes = 2.0 * s.matmulParams() / n, wFlops = 2.0 * s.matmulParams() / n * batch;
        double weights = Math.max(wBytes / bw, wFlops / flopsPerUs);
        double kvBytes = 2.0 * 2 * s.layers() * (double) s.kvDim() / n * ctx * batch;   // K and V, bf16, this rank's heads
        double kv = kvBytes / bw;
        double lora = 0, loraColl = 0;
        int colls = 2 * s.layers() + 1;                         // o and down all-reduces, the logits gather
        double hiddenBytes = 2.0 * batch * s.hidden();          // bf16 activations
        double baseColl = 2 * s.layers() * allReduceUs(g, n, hiddenBytes) + allGatherUs(g, n, 2.0 * batch * s.vocab() / n);
        if (!strategy.equals("base")) {
            long params = strategy.equals("bdlora") ? s.bdParams(r, n) : s.loraParams(r);
            double perRankParams = params / (double) n;          // S-LoRA and BD-LoRA both shard every factor 1/n
            double bytes = 2.0 * perRankParams * Math.min(adapters, batch);
            double flops = 2.0 * perRankParams * batch;
            lora = Math.max(bytes / bw, flops / flopsPerUs);
            if (strategy.equals("slora")) {
                colls += 4 * s.layers();
                // qkv and gate_up: all-gather of (T, r/n) per member; o and down: all-reduce of (T, r)
                double ag = allGatherUs(g, n, 2.0 * batch * 3 * r / n) + allGatherUs(g, n, 2.0 * batch * 2 * r / n);
                double ar = 2 * allReduceUs(g, n, 2.0 * batch * r);
                loraColl = s.layers() * (ag + ar);
            }
        }
        return new Step(weights, kv, lora, baseColl, loraColl, colls);
    }

    /** Ring all-reduce: α + 2(n−1)/n · bytes / link. */
    static double allReduceUs(Gpu g, int n, double bytes) { return g.alphaUs() + 2.0 * (n - 1) / n * bytes / (g.linkGBsPerDir() * 1e3); }

    /** Ring all-gather of sendBytes per rank: α + (n−1) · sendBytes / link. */
    static double allGatherUs(Gpu g, int n, double sendBytes) { return g.alphaUs() + (n - 1) * sendBytes / (g.linkGBsPerDir() * 1e3); }

    /** The paper's end-to-end speed-ups of BD-LoRA over S-LoRA (arXiv 2510.23346, 8x A100, vLLM). */
    public static final Map<String, Double> PAPER = Map.of("Llama-3.1-8B", 1.63, "Llama-3.1-70B", 1.79);

    /** The extrapolation table as Markdown. */
    public static String extrapolate(Gpu g, int denseRank, int ctx, int[] batches, int adapters, double[] alphaSweep) {
        StringBuilder sb = new StringBuilder();
        int n = 8;
        for (Shape s : new Shape[] {Shape.LLAMA_31_8B, Shape.LLAMA_31_70B}) {
            int bdRank = s.parameterMatchedBdRank(denseRank, n);
            sb.append(String.format(Locale.ROOT, "### %s, TP %d, dense rank %d vs BD rank %d (nblocks %d: %.2fx the parameters), context %d, up to %d adapters per batch%n%n",
                    s.name(), n, denseRank, bdRank, n, s.bdParams(bdRank, n) / (double) s.loraParams(denseRank), ctx, adapters));
            sb.append("| batch | base µs | S-LoRA µs (coll µs, count) | BD-LoRA µs (coll µs, count) | BD 2x rank µs | S-LoRA / BD-LoRA | S-LoRA / BD 2x | paper (end to end) |\n");
            sb.append("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for (int b : batches) {
                Step base = decodeStep(g, s, n, b, ctx, "base", 0, adapters);
                Step sl = decodeStep(g, s, n, b, ctx, "slora", denseRank, adapters);
                Step bd = decodeStep(g, s, n, b, ctx, "bdlora", bdRank, adapters);
                Step bd2 = decodeStep(g, s, n, b, ctx, "bdlora", 2 * bdRank, adapters);
                sb.append(String.format(Locale.ROOT, "| %d | %.0f | %.0f (%.0f, %d) | %.0f (%.0f, %d) | %.0f | %.2fx | %.2fx | %.2fx |%n", b, base.totalUs(),
                        sl.totalUs(), sl.baseCollUs() + sl.loraCollUs(), sl.collectives(), bd.totalUs(), bd.baseCollUs() + bd.loraCollUs(), bd.collectives(),
                        bd2.totalUs(), sl.totalUs() / bd.totalUs(), sl.totalUs() / bd2.totalUs(), PAPER.get(s.name())));
            }
            sb.append("\nSensitivity to α (µs per collective), batch ").append(batches[batches.length / 2]).append(": ");
            List<String> parts = new ArrayList<>();
            for (double a : alphaSweep) {
                Gpu ga = g.withAlpha(a);
                int b = batches[batches.length / 2];
                double ratio = decodeStep(ga, s, n, b, ctx, "slora", denseRank, adapters).totalUs() / decodeStep(ga, s, n, b, ctx, "bdlora", bdRank, adapters).totalUs();
                parts.add(String.format(Locale.ROOT, "α %.0f → %.2fx", a, ratio));
            }
            sb.append(String.join(", ", parts)).append(".\n\n");
        }
        return sb.toString();
    }

    /** The local fit as Markdown. */
    public static String fitReport(Fitted f, List<JsonNode> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("### Collective time per decode step: count × α + bytes × β, per transport (rank 0, TP ≥ 2)\n\n");
        sb.append("α is fitted on rank 0's time inside collectives, which includes waiting for the slower rank; the latency floor beside it ")
                .append("is measured (median over the transport's runs of the fastest decode-sized all-reduce in the run, plus the simulated latency).\n\n");
        sb.append("| transport | runs | α µs per collective | β µs per MB | R² | RMS relative error | latency floor µs (measured) |\n|---|---:|---:|---:|---:|---:|---:|\n");
        f.comm().forEach((t, fit) -> {
            double floor = latencyFloorMicros(rows, t);
            sb.append(String.format(Locale.ROOT, "| %s%s | %d | %.1f | %.1f | %.3f | %.0f %% | %s |%n", t, t.startsWith("sim-") ? " (simulated)" : "",
                    fit.n(), 1000 * fit.coef()[0], 1000 * fit.coef()[1], fit.r2(), 100 * fit.rmsRelError(), Double.isNaN(floor) ? "–" : String.format(Locale.ROOT, "%.1f", floor)));
        });
        for (String c : f.checks()) sb.append("\n* ").append(c);
        Fit c = f.compute();
        sb.append(String.format(Locale.ROOT, "%n### Compute per decode step (step − collective time): weights + dense FLOPs + LoRA FLOPs%n%n"
                        + "| runs | ms per GB of weights (→ effective GB/s) | ms per dense GFLOP (→ GFLOP/s) | ms per LoRA GFLOP (→ GFLOP/s) | R² | RMS relative error |%n|---:|---:|---:|---:|---:|---:|%n"
                        + "| %d | %.1f (%s) | %.2f (%s) | %.1f (%s) | %.3f | %.0f %% |%n",
                c.n(), c.coef()[0], inv(c.coef()[0]), c.coef()[1], inv(c.coef()[1]), c.coef()[2], inv(c.coef()[2]), c.r2(), 100 * c.rmsRelError()));
        // the model's S/BD prediction against the measured one, per compare run
        sb.append("\n### The fitted model against the measured S-LoRA / BD-LoRA step-time ratio\n\n| point | predicted S/BD | measured S/BD |\n|---|---:|---:|\n");
        Map<String, Map<String, JsonNode>> byPoint = new LinkedHashMap<>();
        for (JsonNode j : rows) if (!j.has("error")) byPoint.computeIfAbsent(j.path("point").asText(), k -> new LinkedHashMap<>()).put(j.path("strategy").asText(), j);
        for (var e : byPoint.entrySet()) {
            JsonNode sl = e.getValue().get("slora"), bd = e.getValue().get("bdlora");
            if (sl == null || bd == null || sl.path("tp").asInt() < 2) continue;
            Fit comm = f.comm().get(sl.path("transport").asText());
            if (comm == null) continue;
            double ps = predictStep(f.compute(), comm, sl), pb = predictStep(f.compute(), comm, bd);
            sb.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f |%n", e.getKey(), ps / pb, sl.path("slora_over_bdlora_step_time").asDouble()));
        }
        return sb.toString();
    }

    /** Median over the transport's S-LoRA rows of `bench decode`'s measured time of one collective (µs); NaN if none has it. */
    static double latencyFloorMicros(List<JsonNode> rows, String transport) {
        double[] v = rows.stream().filter(j -> !j.has("error") && j.path("transport").asText().equals(transport) && j.path("mechanism").has("us_per_collective"))
                .mapToDouble(j -> j.path("mechanism").path("us_per_collective").asDouble()).sorted().toArray();
        if (v.length == 0) return Double.NaN;
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    static double predictStep(Fit compute, Fit comm, JsonNode j) {
        return compute.predict(computeFeatures(j)) + comm.predict(new double[] {j.path("collectives_per_step_total").asDouble(),
                j.path("collective_bytes_per_step_total").asDouble() / 1e6});
    }

    private static String inv(double msPerUnit) {
        return msPerUnit > 0 ? String.format(Locale.ROOT, "%.1f", 1000 / msPerUnit) : "n/a: coefficient ≤ 0";
    }
}
