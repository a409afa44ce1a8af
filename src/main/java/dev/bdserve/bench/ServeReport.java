package dev.bdserve.bench;

import dev.bdserve.bench.ServeBench.Config;
import dev.bdserve.bench.ServeBench.Output;

import java.io.PrintStream;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** {@link ServeBench}'s results as vLLM reports them: the result dictionary (same keys) and the printed summary. */
public final class ServeReport {
    private ServeReport() {}

    /** vLLM's result dictionary from the per-request outputs. */
    public static Map<String, Object> metrics(Config c, List<Output> outputs, double duration) {
        int completed = 0, failed = 0;
        long totalIn = 0, totalOut = 0;
        List<Double> ttfts = new ArrayList<>(), tpots = new ArrayList<>(), itls = new ArrayList<>(), e2els = new ArrayList<>();
        List<Integer> inLens = new ArrayList<>(), outLens = new ArrayList<>();
        List<List<Double>> itlLists = new ArrayList<>();
        List<String> texts = new ArrayList<>(), errors = new ArrayList<>();
        List<Double> allTtfts = new ArrayList<>();
        for (Output o : outputs) {
            texts.add(o.generatedText());
            errors.add(o.error());
            itlLists.add(o.itl());
            allTtfts.add(o.ttft());
            if (!o.success()) { failed++; inLens.add(0); outLens.add(0); continue; }
            completed++;
            totalIn += o.promptLen();
            totalOut += o.outputTokens();
            inLens.add(o.promptLen());
            outLens.add(o.outputTokens());
            ttfts.add(o.ttft() * 1000);
            if (o.outputTokens() > 1) tpots.add((o.latency() - o.ttft()) / (o.outputTokens() - 1) * 1000);
            for (double d : o.itl()) itls.add(d * 1000);
            e2els.add(o.latency() * 1000);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("date", LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        r.put("backend", "openai");
        r.put("endpoint_type", "openai");
        r.put("base_url", c.baseUrl());
        r.put("endpoint", c.endpoint());
        r.put("model_id", c.model());
        r.put("lora_modules", c.loraModules());
        r.put("lora_assignment", c.assignment().name().toLowerCase(Locale.ROOT).replace('_', '-'));
        r.put("dataset_name", "random");
        r.put("random_input_len", c.inputLen());
        r.put("random_output_len", c.outputLen());
        r.put("random_range_ratio", c.rangeRatio());
        r.put("seed", c.seed());
        r.put("num_prompts", c.numPrompts());
        r.put("request_rate", Double.isInfinite(c.requestRate()) ? "inf" : c.requestRate());
        r.put("burstiness", c.burstiness());
        r.put("max_concurrency", c.maxConcurrency() > 0 ? c.maxConcurrency() : null);
        r.put("duration", duration);
        r.put("completed", completed);
        r.put("failed", failed);
        r.put("total_input_tokens", totalIn);
        r.put("total_output_tokens", totalOut);
        r.put("request_throughput", completed / duration);
        r.put("output_throughput", totalOut / duration);
        r.put("total_token_throughput", (totalIn + totalOut) / duration);
        putStats(r, "ttft", ttfts);
        putStats(r, "tpot", tpots);
        putStats(r, "itl", itls);
        putStats(r, "e2el", e2els);
        r.put("input_lens", inLens);
        r.put("output_lens", outLens);
        r.put("ttfts", allTtfts);
        r.put("itls", itlLists);
        r.put("generated_texts", texts);
        r.put("errors", errors);
        r.putAll(DecodeBench.environment(0));
        return r;
    }

    private static void putStats(Map<String, Object> r, String name, List<Double> ms) {
        double[] v = ms.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        r.put("mean_" + name + "_ms", v.length == 0 ? 0.0 : Arrays.stream(v).average().orElse(0));
        r.put("median_" + name + "_ms", percentile(v, 50));
        r.put("std_" + name + "_ms", std(v));
        r.put("p99_" + name + "_ms", percentile(v, 99));
    }

    /** numpy.percentile's default (linear interpolation between closest ranks) on sorted values; 0 for none. */
    public static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return 0;
        double pos = p / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(pos), hi = (int) Math.ceil(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    /** Population standard deviation (numpy.std's default); 0 for none. */
    static double std(double[] v) {
        if (v.length == 0) return 0;
        double m = Arrays.stream(v).average().orElse(0), s = 0;
        for (double x : v) s += (x - m) * (x - m);
        return Math.sqrt(s / v.length);
    }

    static String fmt(double d) { return String.format(Locale.ROOT, "%.2f", d); }

    private static void line(PrintStream out, String label, Object value) {
        String v = value instanceof Double d ? fmt(d) : String.valueOf(value);
        out.println(String.format(Locale.ROOT, "%-40s %-10s", label, v));
    }

    private static String banner(String s, char fill) {
        int n = 50, left = (n - s.length()) / 2, right = n - s.length() - left;
        return String.valueOf(fill).repeat(Math.max(0, left)) + s + String.valueOf(fill).repeat(Math.max(0, right));
    }

    /** vLLM's printed summary. */
    public static void printSummary(Config c, Map<String, Object> r, PrintStream out) {
        out.println(banner(" Serving Benchmark Result ", '='));
        line(out, "Successful requests:", r.get("completed"));
        if ((int) r.get("failed") > 0) line(out, "Failed requests:", r.get("failed"));
        if (c.maxConcurrency() > 0) line(out, "Maximum request concurrency:", c.maxConcurrency());
        if (!Double.isInfinite(c.requestRate())) line(out, "Request rate configured (RPS):", c.requestRate());
        line(out, "Benchmark duration (s):", r.get("duration"));
        line(out, "Total input tokens:", r.get("total_input_tokens"));
        line(out, "Total generated tokens:", r.get("total_output_tokens"));
        line(out, "Request throughput (req/s):", r.get("request_throughput"));
        line(out, "Output token throughput (tok/s):", r.get("output_throughput"));
        line(out, "Total Token throughput (tok/s):", r.get("total_token_throughput"));
        String[][] metrics = {{"ttft", "TTFT", "Time to First Token"}, {"tpot", "TPOT", "Time per Output Token (excl. 1st token)"},
                {"itl", "ITL", "Inter-token Latency"}, {"e2el", "E2EL", "End-to-end Latency"}};
        for (String[] m : metrics) {
            out.println(banner(m[2], '-'));
            line(out, "Mean " + m[1] + " (ms):", r.get("mean_" + m[0] + "_ms"));
            line(out, "Median " + m[1] + " (ms):", r.get("median_" + m[0] + "_ms"));
            line(out, "P99 " + m[1] + " (ms):", r.get("p99_" + m[0] + "_ms"));
        }
        out.println("=".repeat(50));
        for (Object e : (List<?>) r.get("errors"))
            if (e != null && !e.toString().isEmpty()) { out.println("First error: " + e); break; }
    }
}
