package dev.bdserve.engine;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** The engine's running totals: written on the step thread, read from any thread (the metrics and health routes). */
final class EngineCounters {
    final LongAdder promptTokens = new LongAdder(), generationTokens = new LongAdder(), preemptions = new LongAdder(), steps = new LongAdder();
    private final Map<String, LongAdder> finished = new ConcurrentHashMap<>();          // finish reason → requests
    private final Map<String, PerAdapter> perAdapter = new ConcurrentHashMap<>();       // adapter name ("" for the base) → totals

    private record PerAdapter(LongAdder requests, LongAdder promptTokens, LongAdder generationTokens) {
        PerAdapter() { this(new LongAdder(), new LongAdder(), new LongAdder()); }
    }

    /** A request ended: "stop", "length", "abort" or "error". */
    void finished(String reason, String adapter, int promptTokens) {
        finished.computeIfAbsent(reason, k -> new LongAdder()).increment();
        PerAdapter a = perAdapter.computeIfAbsent(adapter, k -> new PerAdapter());
        a.requests.increment();
        a.promptTokens.add(promptTokens);
    }

    void generated(String adapter) {
        generationTokens.increment();
        perAdapter.computeIfAbsent(adapter, k -> new PerAdapter()).generationTokens.increment();
    }

    Map<String, Long> finishedByReason() {
        Map<String, Long> m = new TreeMap<>();
        finished.forEach((k, v) -> m.put(k, v.sum()));
        return Collections.unmodifiableMap(m);
    }

    Map<String, EngineStats.AdapterCounters> byAdapter() {
        Map<String, EngineStats.AdapterCounters> m = new TreeMap<>();
        perAdapter.forEach((k, v) -> m.put(k, new EngineStats.AdapterCounters(v.requests.sum(), v.promptTokens.sum(), v.generationTokens.sum())));
        return Collections.unmodifiableMap(m);
    }
}
