package dev.bdserve.server;

import dev.bdserve.engine.AdapterInfo;
import dev.bdserve.engine.EngineStats;
import dev.bdserve.engine.RequestMetrics;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.DoubleSupplier;

/**
 * /metrics in the Prometheus text format, with vLLM's metric names (all labelled {@code model_name}).
 * Latency histograms are observed by the server as requests finish; everything else is read from
 * {@link EngineStats} at scrape time by a custom collector, including {@code vllm:lora_requests_info},
 * whose value is the scrape (update) time and whose labels name the adapters, as vLLM exposes it.
 */
public final class ServerMetrics {
    static final double[] TTFT_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
            7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
    static final double[] ITL_BUCKETS = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
            10.0, 20.0, 40.0, 80.0};
    /** Mask time per token: from a cached mask (microseconds) to a cold one deep in a 128K vocabulary (tens of ms). */
    static final double[] MASK_BUCKETS = {1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
            5e-2, 0.1, 0.25, 1.0};
    static final double[] E2E_BUCKETS = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
            120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.builder().setIncludeCreatedTimestamps(false).build();
    private final String modelName;
    private final Histogram ttft, itl, e2e, queue, maskTime;
    private final Counter httpRequests, constrained;
    private final DoubleSupplier clock;

    public ServerMetrics(String modelName, StatsSource engine) { this(modelName, engine, () -> System.currentTimeMillis() / 1000.0); }

    /** What the collector reads at scrape time. */
    public interface StatsSource {
        EngineStats stats();
        List<AdapterInfo> adapters();
    }

    ServerMetrics(String modelName, StatsSource engine, DoubleSupplier clock) {
        this.modelName = modelName;
        this.clock = clock;
        ttft = Histogram.builder().name("vllm:time_to_first_token_seconds").help("Histogram of time to first token in seconds.")
                .labelNames("model_name").classicOnly().classicUpperBounds(TTFT_BUCKETS).register(registry);
        itl = Histogram.builder().name("vllm:inter_token_latency_seconds").help("Histogram of inter-token latency in seconds.")
                .labelNames("model_name").classicOnly().classicUpperBounds(ITL_BUCKETS).register(registry);
        e2e = Histogram.builder().name("vllm:e2e_request_latency_seconds").help("Histogram of e2e request latency in seconds.")
                .labelNames("model_name").classicOnly().classicUpperBounds(E2E_BUCKETS).register(registry);
        queue = Histogram.builder().name("vllm:request_queue_time_seconds").help("Histogram of time spent in WAITING phase for request.")
                .labelNames("model_name").classicOnly().classicUpperBounds(E2E_BUCKETS).register(registry);
        httpRequests = Counter.builder().name("bdserve:http_requests").help("HTTP requests answered, by path and status.")
                .labelNames("path", "status").register(registry);
        constrained = Counter.builder().name("bdserve:constrained_requests").help("Engine requests (choices) with a structured-output constraint, by adapter and kind.")
                .labelNames("adapter", "kind", "model_name").register(registry);
        maskTime = Histogram.builder().name("bdserve:structured_mask_seconds").help("Time to compute and apply a structured-output token mask, per generated token, by adapter.")
                .labelNames("adapter", "model_name").classicOnly().classicUpperBounds(MASK_BUCKETS).register(registry);
        registry.register(new EngineCollector(engine));
    }

    /** A finished engine request. */
    void observe(String adapter, String finishReason, RequestMetrics m) {
        if (m.ttftSeconds() > 0) ttft.labelValues(modelName).observe(m.ttftSeconds());
        if (m.interTokenSeconds() != null) for (double d : m.interTokenSeconds()) itl.labelValues(modelName).observe(d);
        if (m.e2eSeconds() > 0) e2e.labelValues(modelName).observe(m.e2eSeconds());
        if (m.queueSeconds() >= 0) queue.labelValues(modelName).observe(m.queueSeconds());
        if (m.maskSeconds() != null) {
            var h = maskTime.labelValues(adapter == null ? "" : adapter, modelName);
            for (double d : m.maskSeconds()) h.observe(d);
        }
    }

    /** {@code n} constrained engine requests submitted for an adapter (null: the base model). */
    void constrained(String adapter, String kind, int n) {
        constrained.labelValues(adapter == null ? "" : adapter, kind, modelName).inc(n);
    }

    void http(String path, int status) { httpRequests.labelValues(path, Integer.toString(status)).inc(); }

    /** The exposition text. */
    public String scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writer.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    public String contentType() { return writer.getContentType(); }

    /** Engine counters and gauges, read at scrape time. */
    private final class EngineCollector implements MultiCollector {
        private final StatsSource engine;

        EngineCollector(StatsSource engine) { this.engine = engine; }

        @Override
        public MetricSnapshots collect() {
            EngineStats s = engine.stats();
            List<MetricSnapshot> out = new ArrayList<>();
            Labels model = Labels.of("model_name", modelName);
            out.add(gauge("vllm:num_requests_running", "Number of requests in model execution batches.", s.running(), model));
            out.add(gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", s.waiting(), model));
            out.add(gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s.kvUsage(), model));
            out.add(counter("vllm:prompt_tokens", "Number of prefill tokens processed.", s.promptTokens(), model));
            out.add(counter("vllm:generation_tokens", "Number of generation tokens processed.", s.generationTokens(), model));
            out.add(counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", s.preemptions(), model));
            out.add(counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", s.prefixCacheQueries(), model));
            out.add(counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", s.prefixCacheHits(), model));

            CounterSnapshot.Builder success = CounterSnapshot.builder().name("vllm:request_success")
                    .help("Count of successfully processed requests.");
            for (String reason : List.of("stop", "length", "abort")) {
                long v = s.requestsFinished() == null ? 0 : s.requestsFinished().getOrDefault(reason, 0L);
                success.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(v)
                        .labels(Labels.of("finished_reason", reason, "model_name", modelName)).build());
            }
            out.add(success.build());

            out.add(GaugeSnapshot.builder().name("vllm:lora_requests_info").help("Running stats on lora requests.")
                    .dataPoint(GaugeSnapshot.GaugeDataPointSnapshot.builder().value(clock.getAsDouble())
                            .labels(loraInfoLabels(s)).build()).build());

            CounterSnapshot.Builder req = CounterSnapshot.builder().name("bdserve:adapter_requests").help("Requests per adapter (the base model is adapter=\"\").");
            CounterSnapshot.Builder ptok = CounterSnapshot.builder().name("bdserve:adapter_prompt_tokens").help("Prompt tokens per adapter.");
            CounterSnapshot.Builder gtok = CounterSnapshot.builder().name("bdserve:adapter_generation_tokens").help("Generated tokens per adapter.");
            if (s.perAdapter() != null)
                for (Map.Entry<String, EngineStats.AdapterCounters> e : s.perAdapter().entrySet()) {
                    Labels l = Labels.of("adapter", e.getKey(), "model_name", modelName);
                    req.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(e.getValue().requests()).labels(l).build());
                    ptok.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(e.getValue().promptTokens()).labels(l).build());
                    gtok.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(e.getValue().generationTokens()).labels(l).build());
                }
            out.add(req.build());
            out.add(ptok.build());
            out.add(gtok.build());

            GaugeSnapshot.Builder resident = GaugeSnapshot.builder().name("bdserve:adapter_resident").help("1 when the adapter is loaded in memory on every rank, else 0.");
            for (AdapterInfo a : engine.adapters())
                resident.dataPoint(GaugeSnapshot.GaugeDataPointSnapshot.builder().value(a.resident() ? 1 : 0)
                        .labels(Labels.of("adapter", a.name(), "model_name", modelName)).build());
            out.add(resident.build());
            out.add(gauge("bdserve:adapters_resident", "Adapters resident in memory.", s.residentAdapters(), model));

            CommStats c = s.comm();
            CounterSnapshot.Builder calls = CounterSnapshot.builder().name("bdserve:tp_collective_calls").help("Tensor-parallel collectives on rank 0, by kind.");
            CounterSnapshot.Builder bytes = CounterSnapshot.builder().name("bdserve:tp_collective_bytes").help("Bytes moved by tensor-parallel collectives on rank 0, by kind.");
            CounterSnapshot.Builder secs = CounterSnapshot.builder().name("bdserve:tp_collective_seconds").help("Seconds spent in tensor-parallel collectives on rank 0, by kind.");
            if (c != null)
                for (Map.Entry<Collective, Long> e : c.callCounts().entrySet()) {
                    Labels l = Labels.of("kind", e.getKey().name().toLowerCase(Locale.ROOT), "model_name", modelName);
                    calls.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(e.getValue()).labels(l).build());
                    bytes.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(c.bytes(e.getKey())).labels(l).build());
                    secs.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(c.seconds(e.getKey())).labels(l).build());
                }
            out.add(calls.build());
            out.add(bytes.build());
            out.add(secs.build());
            return new MetricSnapshots(out);
        }
    }

    /** vLLM's labels: max_lora, and comma-separated names of adapters with running / waiting requests. */
    static Labels loraInfoLabels(EngineStats s) {
        return Labels.of("max_lora", Integer.toString(s.maxLoras()),
                "running_lora_adapters", String.join(",", s.runningAdapters() == null ? List.of() : s.runningAdapters()),
                "waiting_lora_adapters", String.join(",", s.waitingAdapters() == null ? List.of() : s.waitingAdapters()));
    }

    private static GaugeSnapshot gauge(String name, String help, double v, Labels l) {
        return GaugeSnapshot.builder().name(name).help(help)
                .dataPoint(GaugeSnapshot.GaugeDataPointSnapshot.builder().value(v).labels(l).build()).build();
    }

    private static CounterSnapshot counter(String name, String help, double v, Labels l) {
        return CounterSnapshot.builder().name(name).help(help)
                .dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().value(v).labels(l).build()).build();
    }
}
