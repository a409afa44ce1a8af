package dev.bdserve.engine;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The engine's {@link EngineStats} for the metrics and health routes. The queues and the KV pool belong to the step
 * thread, so it publishes a snapshot of them after each step (and while idle); a reader on any other thread combines
 * the last snapshot with the running totals of {@link EngineCounters}, which may be read at any time.
 */
final class StatsPublisher {
    private final Scheduler scheduler;
    private final EngineCounters counters;
    private final EngineConfig config;
    private final AdapterResidency adapters;
    private final ModelRunner runner;
    private volatile Published published = new Published(0, 0, 0, 0, 0, List.of(), List.of());

    /** What the step thread last published about its queues and the KV pool. */
    private record Published(int running, int waiting, double kvUsage, long prefixQueries, long prefixHits,
                             List<String> runningAdapters, List<String> waitingAdapters) {}

    StatsPublisher(Scheduler scheduler, EngineCounters counters, EngineConfig config, AdapterResidency adapters, ModelRunner runner) {
        this.scheduler = scheduler;
        this.counters = counters;
        this.config = config;
        this.adapters = adapters;
        this.runner = runner;
    }

    /** Step thread: takes a snapshot of the queues and the KV pool for readers on other threads. */
    void publish() {
        Set<String> ra = new LinkedHashSet<>(), wa = new LinkedHashSet<>();
        for (Sequence s : scheduler.running()) if (s.adapter != null) ra.add(s.adapter.name);
        for (Sequence s : scheduler.waiting()) if (s.adapter != null) wa.add(s.adapter.name);
        BlockManager blocks = scheduler.blocks();
        published = new Published(scheduler.running().size(), scheduler.waiting().size(), blocks.used() / (double) blocks.numBlocks(),
                blocks.prefixQueries(), blocks.prefixHits(), List.copyOf(ra), List.copyOf(wa));
    }

    /** Any thread: the last snapshot with the totals as they are now. */
    EngineStats stats() {
        Published p = published;
        return new EngineStats(p.running(), p.waiting(), p.kvUsage(), scheduler.blocks().numBlocks(), counters.promptTokens.sum(),
                counters.generationTokens.sum(), counters.finishedByReason(), counters.preemptions.sum(), p.prefixQueries(),
                p.prefixHits(), counters.steps.sum(), counters.byAdapter(), p.runningAdapters(), p.waitingAdapters(), config.maxLoras(),
                adapters.residentCount(), runner.commStats().snapshot());
    }
}
