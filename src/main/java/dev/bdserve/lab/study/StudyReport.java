package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.JsonNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
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
import java.util.TreeSet;
import java.util.stream.Collectors;

/** Plots (XChart PNGs) and docs/bench/README.md from the study's results.jsonl. */
public final class StudyReport {
    private StudyReport() {}

    static final List<String> STRATEGIES = List.of("base", "replicated", "slora", "bdlora", "bdlora_2x");

    /** Writes the three plots and README.md into {@code out}; returns the README text. */
    public static String write(Path results, Path out, String command, StudyGrid.Settings settings) throws IOException {
        List<JsonNode> all = StudyResults.readResults(results).stream().filter(j -> StudyResults.matches(j, settings)).toList();
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
     * Milliseconds one collective costs in this S-LoRA row's run: the latency floor (the fastest decode-sized
     * all-reduce on the base run of the same process, plus the simulated latency, which is spun before each
     * collective outside its timer) when the row carries `bench decode`'s mechanism block; else, for older rows,
     * rank 0's mean time per collective (which also counts waiting for the slower rank) plus the simulated latency.
     */
    static double msPerCollective(JsonNode row) {
        JsonNode m = row.path("mechanism");
        if (m.has("us_per_collective")) return m.path("us_per_collective").asDouble() / 1000;
        return row.path("collective_ms_per_decode_step").asDouble() / Math.max(1, row.path("collectives_per_step_total").asDouble())
                + row.path("sim_latency_us").asDouble() / 1000;
    }

    /**
     * The paper's mechanism as a prediction of S/BD: BD-LoRA's step plus S-LoRA's extra collectives per step at
     * {@link #msPerCollective} each, over BD-LoRA's step (LoRA compute differences ignored).
     */
    static double predictedSOverBd(JsonNode sl, JsonNode bd) {
        double extra = sl.path("collectives_per_step_total").asDouble() - bd.path("collectives_per_step_total").asDouble();
        double bdStep = bd.path("decode_ms_per_step").asDouble();
        return (bdStep + extra * msPerCollective(sl)) / bdStep;
    }

    /** Measured and predicted S-LoRA / BD-LoRA step time against the time of one collective (µs), per batch size. */
    static boolean speedupVsLatency(List<JsonNode> rows, Path png) throws IOException {
        Map<String, TreeMap<Double, Double>> series = new LinkedHashMap<>();
        Map<String, JsonNode> bdByPoint = new LinkedHashMap<>();
        for (JsonNode j : rows) if (j.path("strategy").asText().equals("bdlora")) bdByPoint.put(j.path("point").asText(), j);
        for (JsonNode j : rows) {
            JsonNode bd = bdByPoint.get(j.path("point").asText());
            if (!j.path("strategy").asText().equals("slora") || bd == null || !j.has("slora_over_bdlora_step_time") || j.path("tp").asInt() < 2) continue;
            double perColl = Math.max(0.1, 1000 * msPerCollective(j));   // log axis
            String name = j.path("shape").asText() + " batch " + j.path("batch").asInt() + ", " + j.path("adapters").asInt() + " adapter(s)";
            series.computeIfAbsent(name + " measured", k -> new TreeMap<>()).put(perColl, j.path("slora_over_bdlora_step_time").asDouble());
            series.computeIfAbsent(name + " predicted", k -> new TreeMap<>()).put(perColl, predictedSOverBd(j, bd));
        }
        if (series.isEmpty()) return false;
        XYChart c = new XYChartBuilder().width(900).height(520).title("BD-LoRA speed-up over S-LoRA vs time per collective (TP 2, decode)")
                .xAxisTitle("time of one collective: latency floor + simulated (µs)").yAxisTitle("S-LoRA step time / BD-LoRA step time").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        c.getStyler().setMarkerSize(9);
        c.getStyler().setXAxisLogarithmic(true);
        Map<String, java.awt.Color> colors = new LinkedHashMap<>();   // measured and predicted of one batch share a colour
        java.awt.Color[] palette = {new java.awt.Color(0x1f77b4), new java.awt.Color(0xd62728), new java.awt.Color(0x2ca02c),
                new java.awt.Color(0x9467bd), new java.awt.Color(0xff7f0e), new java.awt.Color(0x8c564b), new java.awt.Color(0x17becf)};
        for (var e : series.entrySet()) {
            String group = e.getKey().replaceAll(" (measured|predicted)$", "");
            java.awt.Color col = colors.computeIfAbsent(group, g -> palette[colors.size() % palette.length]);
            XYSeries s = c.addSeries(e.getKey(), new ArrayList<>(e.getValue().keySet()), new ArrayList<>(e.getValue().values()));
            s.setLineColor(col);
            s.setMarkerColor(col);
            if (e.getKey().endsWith(" predicted")) {
                s.setMarker(e.getValue().size() == 1 ? SeriesMarkers.CROSS : SeriesMarkers.NONE);
                s.setLineStyle(SeriesLines.DASH_DASH);
            } else s.setMarker(SeriesMarkers.CIRCLE);
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
                + "absolute numbers are noisy; compare the ratios measured within one run (all strategies of a row ran in the same process, interleaved step by step).%n",
                minLoad, maxLoad, cores, maxLoad > 1.5 * cores ? " (other processes competed for the cores)" : " (the benchmark's own ranks; the host's other tenants still move the figures)"));
        int repeats = rows.stream().filter(j -> j.has("raw_adapters")).findFirst().map(j -> j.path("raw_adapters").path("repeats").asInt(1)).orElse(1);
        sb.append(String.format(Locale.ROOT, "* workload: synthetic bf16 models, random prompts of %d tokens, %d decode steps timed per strategy "
                + "(the strategies of a point interleaved step by step in one process, %d times, merged), bf16 adapters on all 7 projections, "
                + "dense rank %d; BD-LoRA at the parameter-matched rank (nblocks = 2) and at twice it (`bdlora_2x`).%n",
                first.path("prompt_tokens").asInt(), first.path("gen_tokens").asInt(), repeats,
                rows.stream().filter(j -> j.path("strategy").asText().equals("slora")).findFirst().map(j -> j.path("lora_rank").asInt()).orElse(0)));
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
                .thenComparing(k -> transportOrder(k.split("\\|")[2])).thenComparing(k -> Integer.parseInt(k.split("\\|")[3])).thenComparing(k -> Integer.parseInt(k.split("\\|")[4])));
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
        sb.append("BD-LoRA removes S-LoRA's extra collectives (one per layer for each of the qkv, o, gate_up and down groups) and nothing else. ")
                .append("The prediction: S-LoRA's step = BD-LoRA's step + extra collectives per step × the time of one collective, where that time is ")
                .append("the latency floor measured in the same process (the fastest decode-sized all-reduce of the base run) plus the simulated latency ")
                .append("(`--tp-sim-latency-us`, spun before each collective). LoRA compute differences are ignored. The mean time per collective would ")
                .append("also count a rank waiting for the slower one, which BD-LoRA does not remove (the wait moves to the next collective).\n\n");
        sb.append("| shape | transport | batch | adapters | extra coll/step | µs per coll | saved ms/step | BD-LoRA step ms | predicted S/BD | measured S/BD | BD/base |\n");
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        double bestRatio = -1, worstRatio = Double.MAX_VALUE;
        String best = "", worst = "";
        Map<String, Map<Integer, String>> regime = new LinkedHashMap<>();   // "shape | transport" -> batch -> "measured (predicted)"
        Set<Integer> regimeBatches = new TreeSet<>();
        for (String k : keys) {
            Map<String, JsonNode> m = byPoint.get(k);
            JsonNode sl = m.get("slora"), bd = m.get("bdlora"), base = m.get("base");
            if (sl == null || bd == null || sl.path("tp").asInt() < 2) continue;
            String[] p = k.split("\\|");
            double extra = sl.path("collectives_per_step_total").asDouble() - bd.path("collectives_per_step_total").asDouble();
            double perColl = msPerCollective(sl);
            double saved = extra * perColl, bdStep = bd.path("decode_ms_per_step").asDouble();
            double predicted = predictedSOverBd(sl, bd), measured = sl.path("slora_over_bdlora_step_time").asDouble();
            sb.append("| ").append(p[0]).append(" | ").append(p[2]).append(Transport(p[2])).append(" | ").append(p[3]).append(" | ").append(p[4]).append(" | ")
                    .append(f(extra)).append(" | ").append(f(1000 * perColl)).append(" | ").append(f(saved)).append(" | ").append(f(bdStep)).append(" | ")
                    .append(f(predicted)).append(" | ").append(f(measured)).append(" | ")
                    .append(base != null ? f(bdStep / base.path("decode_ms_per_step").asDouble()) : "–").append(" |\n");
            if (p[4].equals("1")) {
                regime.computeIfAbsent(p[0] + " | " + p[2] + Transport(p[2]), x -> new TreeMap<>()).put(Integer.parseInt(p[3]), f(measured) + " (" + f(predicted) + ")");
                regimeBatches.add(Integer.parseInt(p[3]));
            }
            if (measured > bestRatio) { bestRatio = measured; best = p[0] + ", " + p[2] + ", batch " + p[3] + ", " + p[4] + " adapter(s)"; }
            if (measured < worstRatio) { worstRatio = measured; worst = p[0] + ", " + p[2] + ", batch " + p[3] + ", " + p[4] + " adapter(s)"; }
        }
        if (!regime.isEmpty()) {
            sb.append("\n### The regime map: measured S/BD (predicted), one adapter\n\n| shape | transport |");
            for (int b : regimeBatches) sb.append(" batch ").append(b).append(" |");
            sb.append("\n|---|---|");
            for (int ignored : regimeBatches) sb.append("---:|");
            sb.append('\n');
            for (var e : regime.entrySet()) {
                sb.append("| ").append(e.getKey()).append(" |");
                for (int b : regimeBatches) sb.append(' ').append(e.getValue().getOrDefault(b, "–")).append(" |");
                sb.append('\n');
            }
        }
        sb.append("\nHow to read it: the saved time is fixed per step (extra collectives × their latency) while the step's compute grows with ")
                .append("the batch, so BD-LoRA's advantage is largest at small batches over slow links and falls towards 1 where compute ")
                .append("dominates (large batches, fast links; at TP 1 there is nothing to save). The prediction leaves out the work S-LoRA does around ")
                .append("each extra collective (packing the shrink outputs, unpacking the gathered ranks), so the measured ratio tends to sit a little above it; ")
                .append("beyond that, the run-to-run noise of this shared host is of the size of the smaller effects. `BD/base` is BD-LoRA's own LoRA ")
                .append("compute (no collective: its counts equal base-only's).\n");
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

    /** Transports from the fastest collective to the slowest: threads, simulated 10/50/100 µs, then mpi (shared memory, TCP, …). */
    static String transportOrder(String label) {
        if (label.equals("threads")) return "0";
        if (label.startsWith("sim-")) return String.format(Locale.ROOT, "1%06d", Integer.parseInt(label.replaceAll("\\D", "")));
        return "2" + label;
    }

    private static String Transport(String label) { return label.startsWith("sim-") ? " (simulated)" : ""; }
}
