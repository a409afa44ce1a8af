package dev.bdserve.server;

import dev.bdserve.engine.AdapterInfo;
import dev.bdserve.engine.EngineStats;
import dev.bdserve.engine.RequestMetrics;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The exposition text of /metrics, from fixed engine stats. */
class ServerMetricsTest {
    static EngineStats stats(List<String> running, List<String> waiting) {
        CommStats comm = new CommStats();
        comm.record(Collective.ATTN_OUT, 4096, 2_000_000);
        comm.record(Collective.ATTN_OUT, 4096, 1_000_000);
        return new EngineStats(3, 2, 0.25, 1024, 1000, 500, Map.of("stop", 4L, "length", 6L, "abort", 1L), 0, 10, 4, 99,
                Map.of("", new EngineStats.AdapterCounters(5, 50, 200), "sql", new EngineStats.AdapterCounters(6, 60, 300)),
                running, waiting, 8, 1, comm);
    }

    static ServerMetrics metrics(EngineStats s) {
        return new ServerMetrics("m", new ServerMetrics.StatsSource() {
            @Override public EngineStats stats() { return s; }
            @Override public List<AdapterInfo> adapters() {
                return List.of(new AdapterInfo("sql", Path.of("/a/sql"), true, false, 1, 8, false, null),
                        new AdapterInfo("chat", Path.of("/a/chat"), false, false, 0, 8, true, null));
            }
        }, () -> 1764425000.5);
    }

    @Test
    void loraRequestsInfoExactText() {
        String text = metrics(stats(List.of("sql", "chat"), List.of("math"))).scrape();
        assertTrue(text.contains("""
                # HELP vllm:lora_requests_info Running stats on lora requests.
                # TYPE vllm:lora_requests_info gauge
                vllm:lora_requests_info{max_lora="8",running_lora_adapters="sql,chat",waiting_lora_adapters="math"} 1.7644250005E9
                """), text);
        String idle = metrics(stats(List.of(), List.of())).scrape();
        assertTrue(idle.contains("vllm:lora_requests_info{max_lora=\"8\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"} 1.7644250005E9\n"), idle);
    }

    @Test
    void vllmNamesAndOurCounters() {
        ServerMetrics m = metrics(stats(List.of(), List.of()));
        m.observe("sql", "stop", new RequestMetrics(0.01, 0.05, new double[]{0.02, 0.03}, 0.4, 10, 3, 0, 0));
        String text = m.scrape();
        for (String line : List.of(
                "vllm:num_requests_running{model_name=\"m\"} 3.0",
                "vllm:num_requests_waiting{model_name=\"m\"} 2.0",
                "vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25",
                "vllm:prompt_tokens_total{model_name=\"m\"} 1000.0",
                "vllm:generation_tokens_total{model_name=\"m\"} 500.0",
                "vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 6.0",
                "vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 4.0",
                "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.06\"} 1",
                "vllm:time_to_first_token_seconds_count{model_name=\"m\"} 1",
                "vllm:inter_token_latency_seconds_count{model_name=\"m\"} 2",
                "vllm:e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"0.5\"} 1",
                "# TYPE vllm:time_to_first_token_seconds histogram",
                "bdserve:adapter_requests_total{adapter=\"sql\",model_name=\"m\"} 6.0",
                "bdserve:adapter_generation_tokens_total{adapter=\"\",model_name=\"m\"} 200.0",
                "bdserve:adapter_resident{adapter=\"chat\",model_name=\"m\"} 0.0",
                "bdserve:adapter_resident{adapter=\"sql\",model_name=\"m\"} 1.0",
                "bdserve:tp_collective_calls_total{kind=\"attn_out\",model_name=\"m\"} 2.0",
                "bdserve:tp_collective_bytes_total{kind=\"attn_out\",model_name=\"m\"} 8192.0",
                "bdserve:tp_collective_seconds_total{kind=\"attn_out\",model_name=\"m\"} 0.003"))
            assertTrue(text.contains(line + "\n"), line + " missing from\n" + text);
    }
}
