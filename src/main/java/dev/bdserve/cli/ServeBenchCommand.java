package dev.bdserve.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.bench.ServeBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code ./bdserve bench serve}: vLLM's {@code bench serve} load generator against any OpenAI-compatible server. */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Load generator in the convention of `vllm bench serve`: streaming /v1/completions requests against any OpenAI-compatible server; prints vLLM's summary and (with --save-result) its result JSON.")
final class ServeBenchCommand implements Callable<Integer> {
    @Option(names = "--base-url", required = true, description = "Server root, e.g. http://127.0.0.1:8000") String baseUrl;
    @Option(names = "--endpoint", defaultValue = "/v1/completions", description = "Completions path (default: ${DEFAULT-VALUE}).") String endpoint;
    @Option(names = "--model", required = true, description = "The base model's served name (requests without an adapter use it).") String model;
    @Option(names = "--lora-modules", arity = "1..*", description = "Adapter names; each request's `model` is one of them.") List<String> loraModules;
    @Option(names = "--lora-assignment", defaultValue = "random", description = "random, round-robin or zipf (s = 1 over the listed order) (default: ${DEFAULT-VALUE}).") String assignment;
    @Option(names = "--dataset", defaultValue = "random", description = "Only `random` (random words, ≈ one token each).") String dataset;
    @Option(names = "--dataset-name", hidden = true) String datasetName;
    @Option(names = {"--input-len", "--random-input-len"}, defaultValue = "1024", description = "Prompt length in words (default: ${DEFAULT-VALUE}).") int inputLen;
    @Option(names = {"--output-len", "--random-output-len"}, defaultValue = "128", description = "max_tokens per request (default: ${DEFAULT-VALUE}).") int outputLen;
    @Option(names = {"--range-ratio", "--random-range-ratio"}, defaultValue = "0", description = "Lengths uniform in [len·(1−r), len·(1+r)] (default: ${DEFAULT-VALUE}).") double rangeRatio;

        @Option(names = "--request-rate", defaultValue = "inf", description = "Requests per second, or inf (all at once) (default: ${DEFAULT-VALUE}).") String requestRate;
        @Option(names = "--burstiness", defaultValue = "1.0", description = "Gamma shape of the arrival gaps; 1 = Poisson (default: ${DEFAULT-VALUE}).") double burstiness;
        @Option(names = "--max-concurrency", defaultValue = "0", description = "Most requests in flight (0: no limit); with --request-rate both apply, as in vLLM.") int maxConcurrency;

    @Option(names = "--num-prompts", defaultValue = "1000", description = "Requests to send (default: ${DEFAULT-VALUE}).") int numPrompts;
    @Option(names = "--seed", defaultValue = "0") long seed;
    @Option(names = "--ignore-eos", description = "Send ignore_eos: true (vLLM's extension), so every request generates max_tokens.") boolean ignoreEos;
    @Option(names = "--lora-field", defaultValue = "model",
            description = "How a request names its adapter: model (vLLM, bdserve) or llamacpp (llama-server's per-request \"lora\": [{id, scale}]).")
    String loraField;
    @Option(names = "--response-format", paramLabel = "JSON",
            description = "A response_format object (e.g. {\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{...}}}) sent with --constrained-fraction of the requests. "
                    + "The summary then adds the server's mask time per token.") String responseFormat;
    @Option(names = "--response-format-file", paramLabel = "FILE", description = "As --response-format, read from FILE.") Path responseFormatFile;
    @Option(names = "--constrained-fraction", defaultValue = "1", description = "Fraction of requests with --response-format, spread evenly (default: ${DEFAULT-VALUE}).")
    double constrainedFraction;
    @Option(names = "--api-key", description = "Bearer token (default: $OPENAI_API_KEY if set).") String apiKey;
    @Option(names = "--save-result", paramLabel = "FILE", description = "Write the result JSON (vLLM's keys) to FILE.") Path saveResult;
    @Option(names = "--request-timeout-s", defaultValue = "21600", description = "Per-request timeout in seconds.") long timeoutS;

    @Override
    public Integer call() throws Exception {
        String ds = datasetName != null ? datasetName : dataset;
        if (!ds.equals("random")) throw new IllegalArgumentException("--dataset " + ds + " is not supported: only `random`");
        double rate = requestRate.equalsIgnoreCase("inf") ? Double.POSITIVE_INFINITY : parseRate(requestRate);
        ServeBench.Assignment a = switch (assignment.toLowerCase(Locale.ROOT)) {
            case "random" -> ServeBench.Assignment.RANDOM;
            case "round-robin", "round_robin" -> ServeBench.Assignment.ROUND_ROBIN;
            case "zipf" -> ServeBench.Assignment.ZIPF;
            default -> throw new IllegalArgumentException("--lora-assignment must be random, round-robin or zipf, got " + assignment);
        };
        String key = apiKey != null ? apiKey : System.getenv("OPENAI_API_KEY");
        if (!loraField.equals("model") && !loraField.equals("llamacpp"))
            throw new IllegalArgumentException("--lora-field must be model or llamacpp, got '" + loraField + "'");
        if (responseFormat != null && responseFormatFile != null)
            throw new IllegalArgumentException("give --response-format or --response-format-file, not both");
        var cfg = new ServeBench.Config(baseUrl, endpoint, model, loraModules, a, inputLen, outputLen, rangeRatio, rate,
                burstiness, maxConcurrency, numPrompts, seed, key, ignoreEos, Duration.ofSeconds(timeoutS), loraField.equals("llamacpp"),
                responseFormatFile != null ? Files.readString(responseFormatFile) : responseFormat,
                constrainedFraction);
        Map<String, Object> r = ServeBench.run(cfg, System.out);
        if (saveResult != null) {
            Path parent = saveResult.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(saveResult.toFile(), r);
            System.err.println("bdserve: result written to " + saveResult);
        }
        return (int) r.get("completed") == numPrompts ? 0 : 1;
    }

    private static double parseRate(String s) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--request-rate must be a number or inf, got " + s);
        }
    }
}
