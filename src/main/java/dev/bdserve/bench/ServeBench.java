package dev.bdserve.bench;

import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * The load generator of {@code vllm bench serve}, for any OpenAI-compatible server: streaming
 * {@code /v1/completions} requests with random prompts, Poisson (gamma, with burstiness) arrivals or a fixed
 * concurrency, adapters assigned to requests by name in the {@code model} field; the same summary lines and
 * result JSON keys as vLLM (times in the JSON lists in seconds, the statistics in ms). This class holds the settings
 * and sends the requests on schedule; {@link ServeWorkload} makes them, {@link ServeRequest} times one,
 * {@link ServeReport} sums them up.
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
     * @param llamaCppLora   select a request's adapter as llama-server does, by a {@code lora} list of {@code {id, scale}}
     *                       (the adapter's index in {@code loraModules}, scale 1) with {@code model} the base's, instead
     *                       of naming the adapter in {@code model} (vLLM, bdserve)
     * @param responseFormat a {@code response_format} object (JSON text) sent with a fraction of the requests, or null
     * @param constrainedFraction the fraction of requests that carry it, spread evenly over the run (in [0, 1])
     */
    public record Config(String baseUrl, String endpoint, String model, List<String> loraModules, Assignment assignment,
                         int inputLen, int outputLen, double rangeRatio, double requestRate, double burstiness,
                         int maxConcurrency, int numPrompts, long seed, String apiKey, boolean ignoreEos,
                         Duration requestTimeout, boolean llamaCppLora, String responseFormat, double constrainedFraction) {
        /** Without structured output. */
        public Config(String baseUrl, String endpoint, String model, List<String> loraModules, Assignment assignment,
                      int inputLen, int outputLen, double rangeRatio, double requestRate, double burstiness,
                      int maxConcurrency, int numPrompts, long seed, String apiKey, boolean ignoreEos,
                      Duration requestTimeout, boolean llamaCppLora) {
            this(baseUrl, endpoint, model, loraModules, assignment, inputLen, outputLen, rangeRatio, requestRate, burstiness,
                    maxConcurrency, numPrompts, seed, apiKey, ignoreEos, requestTimeout, llamaCppLora, null, 0);
        }

        public Config {
            if (!(constrainedFraction >= 0 && constrainedFraction <= 1))
                throw new IllegalArgumentException("--constrained-fraction must be in [0, 1], got " + constrainedFraction);
            if (responseFormat != null) {
                try {
                    if (!new com.fasterxml.jackson.databind.ObjectMapper().readTree(responseFormat).isObject())
                        throw new IllegalArgumentException("--response-format must be a JSON object");
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new IllegalArgumentException("--response-format is not valid JSON: " + e.getOriginalMessage(), e);
                }
            }
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

    /** Whether request {@code i} carries the response format: ⌊(i+1)·f⌋ > ⌊i·f⌋, so the constrained ones are spread evenly. */
    static boolean constrained(Config c, int i) {
        return c.responseFormat() != null && Math.floor((i + 1) * c.constrainedFraction()) > Math.floor(i * c.constrainedFraction());
    }

    /** What one request measured. Times in seconds. */
    public record Output(boolean success, int promptLen, int outputTokens, double ttft, List<Double> itl,
                         double latency, String generatedText, String error) {}

    private ServeBench() {}

    /** Runs the benchmark, prints vLLM's summary to {@code out}, and returns the result object (vLLM's keys). */
    public static Map<String, Object> run(Config c, PrintStream out) throws InterruptedException {
        List<Prompt> prompts = ServeWorkload.randomDataset(c);
        double[] gaps = ServeWorkload.arrivalGaps(prompts.size(), c.requestRate(), c.burstiness(), c.seed());
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(30)).build();
        URI uri = URI.create(c.baseUrl().replaceAll("/+$", "") + c.endpoint());
        out.println("Traffic request rate: " + (Double.isInfinite(c.requestRate()) ? "inf" : ServeReport.fmt(c.requestRate())));
        out.println("Burstiness factor: " + c.burstiness() + (c.burstiness() == 1 ? " (Poisson process)" : ""));
        out.println("Maximum request concurrency: " + (c.maxConcurrency() > 0 ? c.maxConcurrency() : "None"));
        Semaphore limit = c.maxConcurrency() > 0 ? new Semaphore(c.maxConcurrency()) : null;
        List<Future<Output>> futures = new ArrayList<>();
        MaskHistogram masksBefore = c.responseFormat() != null ? MaskHistogram.scrape(client, c) : null;
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            long next = start;
            for (int i = 0; i < prompts.size(); i++) {
                long wait = next - System.nanoTime();        // the first request goes at once, then the gaps (vLLM)
                if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                next += (long) (gaps[i] * 1e9);
                Prompt p = prompts.get(i);
                boolean constrained = constrained(c, i);
                futures.add(pool.submit(() -> {
                    if (limit != null) limit.acquire();
                    try {
                        return ServeRequest.send(client, uri, c, p, constrained);
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
        Map<String, Object> result = ServeReport.metrics(c, outputs, duration);
        ServeReport.printSummary(c, result, out);
        if (masksBefore != null) {
            int n = 0;
            for (int i = 0; i < prompts.size(); i++) if (constrained(c, i)) n++;
            result.put("constrained_requests", n);
            MaskHistogram masks = MaskHistogram.scrape(client, c);
            if (masks != null && masksBefore != null) {
                masks = masks.minus(masksBefore);
                result.put("mask_tokens", masks.count());
                result.put("p50_mask_ms", masks.quantile(0.5) * 1e3);
                result.put("p99_mask_ms", masks.quantile(0.99) * 1e3);
                out.printf("Constrained requests: %d; mask time per token (server histogram, %d tokens): p50 %.4f ms, p99 %.4f ms%n",
                        n, masks.count(), masks.quantile(0.5) * 1e3, masks.quantile(0.99) * 1e3);
            } else out.println("Constrained requests: " + n + "; the server exposes no bdserve:structured_mask_seconds histogram");
        }
        return result;
    }
}
