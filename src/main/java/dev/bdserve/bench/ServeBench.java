package dev.bdserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.stream.Stream;

/**
 * The load generator of {@code vllm bench serve}, for any OpenAI-compatible server: streaming
 * {@code /v1/completions} requests with random prompts, Poisson (gamma, with burstiness) arrivals or a fixed
 * concurrency, adapters assigned to requests by name in the {@code model} field; the same summary lines and
 * result JSON keys as vLLM (times in the JSON lists in seconds, the statistics in ms).
 */
public final class ServeBench {
    /** How requests are spread over the LoRA modules. */
    public enum Assignment { RANDOM, ROUND_ROBIN, ZIPF }

    /**
     * One benchmark's settings.
     *
     * @param requestRate    requests per second; {@code Double.POSITIVE_INFINITY}: all at once
     * @param burstiness     the gamma shape of the inter-arrival times (1 = Poisson)
     * @param maxConcurrency most requests in flight, or 0 for no limit
     * @param rangeRatio     input and output lengths are drawn uniformly from [len·(1−r), len·(1+r)]
     */
    public record Config(String baseUrl, String endpoint, String model, List<String> loraModules, Assignment assignment,
                         int inputLen, int outputLen, double rangeRatio, double requestRate, double burstiness,
                         int maxConcurrency, int numPrompts, long seed, String apiKey, boolean ignoreEos,
                         Duration requestTimeout) {
        public Config {
            if (baseUrl == null || baseUrl.isBlank()) throw new IllegalArgumentException("--base-url is required (e.g. http://127.0.0.1:8000)");
            if (model == null || model.isBlank()) throw new IllegalArgumentException("--model is required (the served base model's name)");
            if (numPrompts < 1) throw new IllegalArgumentException("--num-prompts must be ≥ 1, got " + numPrompts);
            if (inputLen < 1 || outputLen < 1) throw new IllegalArgumentException("--input-len and --output-len must be ≥ 1, got " + inputLen + " and " + outputLen);
            if (!(rangeRatio >= 0 && rangeRatio < 1)) throw new IllegalArgumentException("--range-ratio must be in [0, 1), got " + rangeRatio);
            if (!(requestRate > 0)) throw new IllegalArgumentException("--request-rate must be > 0 (or inf), got " + requestRate);
            if (!(burstiness > 0)) throw new IllegalArgumentException("--burstiness must be > 0, got " + burstiness);
            if (maxConcurrency < 0) throw new IllegalArgumentException("--max-concurrency must be ≥ 1, got " + maxConcurrency);
            loraModules = loraModules == null ? List.of() : List.copyOf(loraModules);
            if (endpoint == null) endpoint = "/v1/completions";
            if (assignment == null) assignment = Assignment.RANDOM;
            if (requestTimeout == null) requestTimeout = Duration.ofHours(6);
        }
    }

    /** One request of the random dataset. */
    public record Prompt(String text, int promptLen, int outputLen, String model) {}

    /** What one request measured. Times in seconds. */
    public record Output(boolean success, int promptLen, int outputTokens, double ttft, List<Double> itl,
                         double latency, String generatedText, String error) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Short, common English words: each is one token in Llama-family vocabularies, so word count ≈ token count. */
    private static final String[] WORDS = ("the of and to in is was for on that with as it by at from his he be an are "
            + "this had not but have which were or one all they her she you we there been their has time would when "
            + "who more will if no out so said what up its about into than them can only other new some could these "
            + "two may first then do any like my now over such our man me even most made after also did many before "
            + "must through back years where much your way well down should because each just those people how too "
            + "little state good very make world still own see men work long get here between both life being under "
            + "never day same another know while last might us great old year off come since against go came right "
            + "used take three small house story girl boy park play found tree sun happy friend").split(" ");

    private ServeBench() {}

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

    /** Runs the benchmark, prints vLLM's summary to {@code out}, and returns the result object (vLLM's keys). */
    public static Map<String, Object> run(Config c, PrintStream out) throws InterruptedException {
        List<Prompt> prompts = randomDataset(c);
        double[] gaps = arrivalGaps(prompts.size(), c.requestRate(), c.burstiness(), c.seed());
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(30)).build();
        URI uri = URI.create(c.baseUrl().replaceAll("/+$", "") + c.endpoint());
        out.println("Traffic request rate: " + (Double.isInfinite(c.requestRate()) ? "inf" : fmt(c.requestRate())));
        out.println("Burstiness factor: " + c.burstiness() + (c.burstiness() == 1 ? " (Poisson process)" : ""));
        out.println("Maximum request concurrency: " + (c.maxConcurrency() > 0 ? c.maxConcurrency() : "None"));
        Semaphore limit = c.maxConcurrency() > 0 ? new Semaphore(c.maxConcurrency()) : null;
        List<Future<Output>> futures = new ArrayList<>();
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            long next = start;
            for (int i = 0; i < prompts.size(); i++) {
                long wait = next - System.nanoTime();        // the first request goes at once, then the gaps (vLLM)
                if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                next += (long) (gaps[i] * 1e9);
                Prompt p = prompts.get(i);
                futures.add(pool.submit(() -> {
                    if (limit != null) limit.acquire();
                    try {
                        return send(client, uri, c, p);
                    } finally {
                        if (limit != null) limit.release();
                    }
                }));
            }
        }
        double duration = (System.nanoTime() - start) / 1e9;
        List<Output> outputs = new ArrayList<>();
        for (Future<Output> f : futures) {
            try {
                outputs.add(f.get());
            } catch (java.util.concurrent.ExecutionException e) {
                outputs.add(new Output(false, 0, 0, 0, List.of(), 0, "", String.valueOf(e.getCause())));
            }
        }
        Map<String, Object> result = metrics(c, outputs, duration);
        printSummary(c, result, out);
        return result;
    }

    /** Sends one streaming completion request and times its chunks. */
    static Output send(HttpClient client, URI uri, Config c, Prompt p) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", p.model());
        body.put("prompt", p.text());
        body.put("temperature", 0.0);
        body.put("max_tokens", p.outputLen());
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (c.ignoreEos()) body.put("ignore_eos", true);
        HttpRequest.Builder rb = HttpRequest.newBuilder(uri).timeout(c.requestTimeout())
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (c.apiKey() != null && !c.apiKey().isEmpty()) rb.header("Authorization", "Bearer " + c.apiKey());
        long st = System.nanoTime();
        double ttft = 0;
        List<Double> itl = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        int promptLen = p.promptLen(), chunks = 0, usageTokens = -1;
        try {
            HttpResponse<Stream<String>> resp = client.send(rb.build(), HttpResponse.BodyHandlers.ofLines());
            try (Stream<String> lines = resp.body()) {
                if (resp.statusCode() != 200) {
                    String err = String.join("\n", (Iterable<String>) lines::iterator);
                    return new Output(false, promptLen, 0, 0, List.of(), 0, "", "HTTP " + resp.statusCode() + " from " + uri + ": " + err);
                }
                long last = st;
                for (Iterator<String> it = lines.iterator(); it.hasNext(); ) {
                    String line = it.next().strip();
                    if (line.isEmpty() || line.startsWith(":")) continue;
                    if (!line.startsWith("data:")) continue;
                    String data = line.substring(5).strip();
                    // read on to the end of the body rather than break: closing the stream early cancels the
                    // body, and Java's HttpClient may then close the connection after it has already handed it
                    // to the next request (the server saw that request's client go away: a 499 here)
                    if (data.equals("[DONE]")) continue;
                    JsonNode j = JSON.readTree(data);
                    if (j.has("error")) return new Output(false, promptLen, 0, 0, List.of(), 0, text.toString(), "server error in stream: " + j.get("error"));
                    long now = System.nanoTime();
                    JsonNode choices = j.path("choices");
                    if (choices.isArray() && !choices.isEmpty()) {
                        JsonNode ch = choices.get(0);
                        String t = ch.has("text") ? ch.path("text").asText("") : ch.path("delta").path("content").asText("");
                        if (!t.isEmpty()) {
                            if (chunks == 0) ttft = (now - st) / 1e9;
                            else itl.add((now - last) / 1e9);
                            chunks++;
                            last = now;
                            text.append(t);
                        }
                    }
                    JsonNode usage = j.path("usage");
                    if (usage.isObject()) {
                        if (usage.has("completion_tokens")) usageTokens = usage.get("completion_tokens").asInt();
                        if (usage.has("prompt_tokens")) promptLen = usage.get("prompt_tokens").asInt();
                    }
                }
            }
        } catch (java.net.ConnectException e) {
            return new Output(false, promptLen, 0, 0, List.of(), 0, "", "cannot connect to " + uri + " (is the server running? " + e + ")");
        } catch (IOException e) {
            return new Output(false, promptLen, 0, 0, List.of(), 0, text.toString(), "request to " + uri + " failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Output(false, promptLen, 0, 0, List.of(), 0, text.toString(), "interrupted");
        }
        double latency = (System.nanoTime() - st) / 1e9;
        if (chunks == 0) return new Output(false, promptLen, 0, 0, List.of(), latency, "", "the stream from " + uri + " carried no text");
        int outTokens = usageTokens >= 0 ? usageTokens : chunks;
        return new Output(true, promptLen, outTokens, ttft, itl, latency, text.toString(), "");
    }

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

    private static String fmt(double d) { return String.format(Locale.ROOT, "%.2f", d); }

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
