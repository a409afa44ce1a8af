package dev.bdserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/** Plots (XChart PNGs) and docs/bench/README.md from the study's results.jsonl. */
public final class StudyReport {
    private StudyReport() {}

    static final List<String> STRATEGIES = List.of("base", "replicated", "slora", "bdlora", "bdlora_2x");

    /** Writes the three plots and README.md into {@code out}; returns the README text. */
    public static String write(Path results, Path out, String command, Study.Settings settings) throws IOException {
        List<JsonNode> all = Study.readResults(results).stream().filter(j -> Study.matches(j, settings)).toList();
        List<JsonNode> rows = all.stream().filter(j -> !j.has("error")).toList();
        List<JsonNode> errors = all.stream().filter(j -> j.has("error")).toList();
        if (rows.isEmpty()) throw new IOException(results + " has no successful results to report");
        Files.createDirectories(out);
        List<String> plots = new ArrayList<>();
        for (String shape : rows.stream().map(j -> j.path("shape").asText()).collect(Collectors.toCollection(LinkedHashSet::new))) {
            String f = "throughput_vs_batch_" + shape + ".png";
            if (throughputVsBatch(rows, shape, out.resolve(f))) plots.add(f);
        }
        if (collectiveShare(rows, out.resolve("collective_share.png"))) plots.add("collective_share.png");
        if (speedupVsLatency(rows, out.resolve("speedup_vs_latency.png"))) plots.add("speedup_vs_latency.png");
        String md = readme(rows, errors, plots, command);
        Files.writeString(out.resolve("README.md"), md, StandardCharsets.UTF_8);
        return md;
    }

    private static boolean is(JsonNode j, String shape, int tp, String transport, int adapters) {
        return j.path("shape").asText().equals(shape) && j.path("tp").asInt() == tp && j.path("transport").asText().equals(transport)
                && j.path("adapters").asInt() == adapters;
    }

    /** Decode tokens/s vs batch per strategy, TP 2 over threads (or the largest TP present), one adapter. */
    static boolean throughputVsBatch(List<JsonNode> rows, String shape, Path png) throws IOException {
        int tp = rows.stream().filter(j -> j.path("shape").asText().equals(shape)).mapToInt(j -> j.path("tp").asInt()).max().orElse(1);
        XYChart c = new XYChartBuilder().width(800).height(500).title(shape + ": decode throughput vs batch (TP " + tp + ", threads, 1 adapter)")
                .xAxisTitle("batch (sequences)").yAxisTitle("decode tokens/s").build();
        c.getStyler().setXAxisLogarithmic(true);
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        c.getStyler().setMarkerSize(8);
        boolean any = false;
        for (String s : STRATEGIES) {
            TreeMap<Integer, Double> pts = new TreeMap<>();
            for (JsonNode j : rows)
                if (is(j, shape, tp, "threads", 1) && j.path("strategy").asText().equals(s))
                    pts.put(j.path("batch").asInt(), j.path("decode_tokens_per_s").asDouble());
            if (pts.size() < 1) continue;
            XYSeries ser = c.addSeries(s, new ArrayList<>(pts.keySet()), new ArrayList<>(pts.values()));
            ser.setMarker(SeriesMarkers.CIRCLE);
            any = true;
        }
        if (any) BitmapEncoder.saveBitmap(c, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        return any;
    }

    /** Share of the decode step spent in collectives (rank 0's wall time inside them), per transport and strategy. */
    static boolean collectiveShare(List<JsonNode> rows, Path png) throws IOException {
        Map<String, Map<String, Double>> byTransport = new LinkedHashMap<>();
        for (JsonNode j : rows) {
            if (j.path("tp").asInt() < 2 || j.path("batch").asInt() != 4 || j.path("adapters").asInt() != 1) continue;
            String t = j.path("shape").asText() + " " + j.path("transport").asText() + (j.path("simulated").asBoolean() ? " (sim)" : "");
            byTransport.computeIfAbsent(t, k -> new LinkedHashMap<>()).put(j.path("strategy").asText(), j.path("collective_share").asDouble());
        }
        if (byTransport.isEmpty()) return false;
        CategoryChart c = new CategoryChartBuilder().width(1000).height(520).title("Time share in collectives per decode step (TP 2, batch 4, 1 adapter)")
                .xAxisTitle("transport").yAxisTitle("collective time / step time").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        c.getStyler().setXAxisLabelRotation(20);
        List<String> cats = new ArrayList<>(byTransport.keySet());
        for (String s : STRATEGIES) {
            List<Double> ys = new ArrayList<>();
            boolean any = false;
            for (String t : cats) {
                Double v = byTransport.get(t).get(s);
                ys.add(v == null ? 0.0 : v);
                any |= v != null;
            }
            if (any) c.addSeries(s, cats, ys);
        }
        BitmapEncoder.saveBitmap(c, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        return true;
    }

    /**
     * S-LoRA step time / BD-LoRA step time against the mean time of one base collective on that run (µs):
     * the simulated latencies and the real transports on one axis.
     */
    /**
     * Mean milliseconds of one collective in a decode step of this row's run: rank 0's time inside collectives over
     * their count, plus the simulated latency, which is spun before each collective outside its timer.
     */
    static double msPerCollective(JsonNode row) {
        return row.path("collective_ms_per_decode_step").asDouble() / Math.max(1, row.path("collectives_per_step_total").asDouble())
                + row.path("sim_latency_us").asDouble() / 1000;
    }

    static boolean speedupVsLatency(List<JsonNode> rows, Path png) throws IOException {
        Map<String, TreeMap<Double, Double>> series = new LinkedHashMap<>();
        for (JsonNode j : rows) {
            if (!j.path("strategy").asText().equals("base") || !j.has("slora_over_bdlora_step_time") || j.path("tp").asInt() < 2) continue;
            double perColl = 1000 * msPerCollective(j);
            String name = j.path("shape").asText() + " batch " + j.path("batch").asInt() + ", " + j.path("adapters").asInt() + " adapter(s)";
            String kind = j.path("simulated").asBoolean() ? " (simulated)" : j.path("transport").asText().startsWith("mpi") ? " (mpi)" : " (threads)";
            series.computeIfAbsent(name + kind, k -> new TreeMap<>()).put(perColl, j.path("slora_over_bdlora_step_time").asDouble());
        }
        if (series.isEmpty()) return false;
        XYChart c = new XYChartBuilder().width(900).height(520).title("BD-LoRA speed-up over S-LoRA vs per-collective time (TP 2, decode)")
                .xAxisTitle("mean time per base collective on the run (µs)").yAxisTitle("S-LoRA step time / BD-LoRA step time").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        c.getStyler().setMarkerSize(9);
        c.getStyler().setXAxisLogarithmic(true);
        for (var e : series.entrySet()) {
            XYSeries s = c.addSeries(e.getKey(), new ArrayList<>(e.getValue().keySet()), new ArrayList<>(e.getValue().values()));
            s.setMarker(SeriesMarkers.CIRCLE);
            if (e.getValue().size() == 1) s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        }
        BitmapEncoder.saveBitmap(c, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        return true;
    }

    static String f(double v) { return String.format(Locale.ROOT, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v); }

    static String readme(List<JsonNode> rows, List<JsonNode> errors, List<String> plots, String command) {
        StringBuilder sb = new StringBuilder();
        JsonNode first = rows.getFirst();
        Set<String> commits = rows.stream().map(j -> j.path("git_commit").asText()).collect(Collectors.toCollection(LinkedHashSet::new));
        double minLoad = rows.stream().mapToDouble(j -> j.path("load_avg_1m").asDouble()).min().orElse(-1);
        double maxLoad = rows.stream().mapToDouble(j -> j.path("load_avg_1m").asDouble()).max().orElse(-1);
        sb.append("# S-LoRA vs BD-LoRA on this machine\n\n");
        sb.append("Generated by `").append(command).append("` from [results.jsonl](results.jsonl) (one JSON line per run and strategy; ")
                .append("re-running skips points already there). Do not edit by hand.\n\n");
        sb.append("* machine: ").append(first.path("machine").asText()).append(", ").append(first.path("vector_bits").asInt()).append("-bit vectors; JVM ")
                .append(first.path("jvm").asText()).append("\n");
        sb.append("* commits: ").append(String.join(", ", commits)).append("\n");
        int cores = first.path("cores").asInt();
        sb.append(String.format(Locale.ROOT, "* 1-minute load average during the runs: %.1f – %.1f on %d cores%s: "
                + "absolute numbers are noisy; compare the ratios measured within one run (all strategies of a row ran in the same process, one after another).%n",
                minLoad, maxLoad, cores, maxLoad > 1.5 * cores ? " (other processes competed for the cores)" : " (the benchmark's own ranks; the host's other tenants still move the figures)"));
        sb.append(String.format(Locale.ROOT, "* workload: synthetic bf16 models, random prompts of %d tokens, %d decode steps timed per strategy, bf16 adapters on all 7 projections, "
                + "dense rank %d; BD-LoRA at the parameter-matched rank (nblocks = 2) and at twice it (`bdlora_2x`).%n",
                first.path("prompt_tokens").asInt(), first.path("gen_tokens").asInt(), rows.stream().filter(j -> j.path("strategy").asText().equals("slora")).findFirst().map(j -> j.path("lora_rank").asInt()).orElse(0)));
        sb.append("* `sim-Nus` transports are **simulated**: the threads transport plus N µs added to every collective (`--tp-sim-latency-us`).\n\n");

        sb.append("## Headline table (decode)\n\n");
        sb.append("tokens/s per strategy; `S/BD` = S-LoRA step time ÷ BD-LoRA step time in the same run (> 1: BD-LoRA faster); ")
                .append("`coll/step` = collectives per decode step (S-LoRA vs BD-LoRA); `coll ms` = rank 0's time inside collectives per step.\n\n");
        sb.append("| shape | TP | transport | batch | adapters | base | replicated | slora | bdlora | bdlora 2x | S/BD | coll/step S vs BD | coll ms S vs BD | step ms S vs BD | prefill tok/s S vs BD |\n");
        sb.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|\n");
        Map<String, Map<String, JsonNode>> byPoint = new LinkedHashMap<>();
        for (JsonNode j : rows) {
            String key = j.path("shape").asText() + "|" + j.path("tp").asInt() + "|" + j.path("transport").asText() + "|" + j.path("batch").asInt() + "|" + j.path("adapters").asInt();
            byPoint.computeIfAbsent(key, k -> new LinkedHashMap<>()).put(j.path("strategy").asText(), j);
        }
        List<String> keys = new ArrayList<>(byPoint.keySet());
        keys.sort(Comparator.comparing((String k) -> k.split("\\|")[0]).thenComparing(k -> Integer.parseInt(k.split("\\|")[1]))
                .thenComparing(k -> k.split("\\|")[2]).thenComparing(k -> Integer.parseInt(k.split("\\|")[3])).thenComparing(k -> Integer.parseInt(k.split("\\|")[4])));
        for (String k : keys) {
            Map<String, JsonNode> m = byPoint.get(k);
            String[] p = k.split("\\|");
            sb.append("| ").append(p[0]).append(" | ").append(p[1]).append(" | ").append(p[2]).append(Transport(p[2])).append(" | ").append(p[3]).append(" | ").append(p[4]).append(" | ");
            for (String s : STRATEGIES) sb.append(m.containsKey(s) ? f(m.get(s).path("decode_tokens_per_s").asDouble()) : "–").append(" | ");
            JsonNode sl = m.get("slora"), bd = m.get("bdlora");
            JsonNode any = m.values().iterator().next();
            sb.append(any.has("slora_over_bdlora_step_time") ? f(any.path("slora_over_bdlora_step_time").asDouble()) : "–").append(" | ");
            if (sl != null && bd != null) {
                sb.append(f(sl.path("collectives_per_step_total").asDouble())).append(" vs ").append(f(bd.path("collectives_per_step_total").asDouble())).append(" | ");
                sb.append(f(sl.path("collective_ms_per_decode_step").asDouble())).append(" vs ").append(f(bd.path("collective_ms_per_decode_step").asDouble())).append(" | ");
                sb.append(f(sl.path("decode_ms_per_step").asDouble())).append(" vs ").append(f(bd.path("decode_ms_per_step").asDouble())).append(" | ");
                sb.append(f(sl.path("prefill_tokens_per_s").asDouble())).append(" vs ").append(f(bd.path("prefill_tokens_per_s").asDouble())).append(" |\n");
            } else sb.append("– | – | – | – |\n");
        }
        sb.append("\n## Where BD-LoRA's advantage comes from (decode, TP ≥ 2)\n\n");
        sb.append("S-LoRA's extra collectives per step × the mean time of one collective on that run (rank 0's wall time inside collectives ÷ their count, ")
                .append("which includes waiting for the slower rank, plus any simulated latency, which is spun outside that timer) is the time BD-LoRA saves by construction; set against the S-LoRA step time it predicts the speed-up ")
                .append("`1 / (1 − saved / step)` (LoRA compute differences ignored). The measured `S/BD` is beside it.\n\n");
        sb.append("| shape | transport | batch | adapters | extra coll/step | µs per coll (S-LoRA run) | saved ms/step | S-LoRA step ms | predicted S/BD | measured S/BD |\n");
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        double bestRatio = -1, worstRatio = Double.MAX_VALUE;
        String best = "", worst = "";
        for (String k : keys) {
            Map<String, JsonNode> m = byPoint.get(k);
            JsonNode sl = m.get("slora"), bd = m.get("bdlora");
            if (sl == null || bd == null || sl.path("tp").asInt() < 2) continue;
            String[] p = k.split("\\|");
            double extra = sl.path("collectives_per_step_total").asDouble() - bd.path("collectives_per_step_total").asDouble();
            double perColl = msPerCollective(sl);
            double saved = extra * perColl, step = sl.path("decode_ms_per_step").asDouble();
            double measured = sl.path("slora_over_bdlora_step_time").asDouble();
            sb.append("| ").append(p[0]).append(" | ").append(p[2]).append(Transport(p[2])).append(" | ").append(p[3]).append(" | ").append(p[4]).append(" | ")
                    .append(f(extra)).append(" | ").append(f(1000 * perColl)).append(" | ").append(f(saved)).append(" | ").append(f(step)).append(" | ")
                    .append(saved < step ? f(1 / (1 - saved / step)) : "–").append(" | ").append(f(measured)).append(" |\n");
            if (measured > bestRatio) { bestRatio = measured; best = p[0] + ", " + p[2] + ", batch " + p[3] + ", " + p[4] + " adapter(s)"; }
            if (measured < worstRatio) { worstRatio = measured; worst = p[0] + ", " + p[2] + ", batch " + p[3] + ", " + p[4] + " adapter(s)"; }
        }
        sb.append("\nHow to read it: BD-LoRA removes S-LoRA's 4 extra collectives per layer and nothing else, so its gain is the ")
                .append("saved collective time over the S-LoRA step. It is largest where a collective is expensive next to the compute of a step ")
                .append("(small batches, slow transports) and falls towards 1 where compute dominates (large batches, one rank: at TP 1 there is ")
                .append("nothing to save and the ratio only reflects the rank difference and noise). Where the measured ratio and the ")
                .append("prediction disagree, the run-to-run noise of this shared host is of the size of the effect.\n");
        if (bestRatio > 0)
            sb.append("\nLargest measured BD-LoRA advantage: ").append(f(bestRatio)).append("x (").append(best).append("); smallest: ")
                    .append(f(worstRatio)).append("x (").append(worst).append(").\n");
        sb.append("\n## Plots\n\n");
        for (String p : plots) sb.append("![").append(p).append("](").append(p).append(")\n\n");
        if (!errors.isEmpty()) {
            sb.append("## Points that failed\n\n");
            for (JsonNode e : errors) sb.append("* `").append(e.path("point").asText()).append("`: ").append(e.path("error").asText().replace("\n", " ")).append("\n");
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String Transport(String label) { return label.startsWith("sim-") ? " (simulated)" : ""; }
}
