package dev.bdserve.engine;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The scheduler without a model: budgets, chunked prefill, preemption, the prefix cache and max_loras. */
class SchedulerTest {
    static EngineConfig cfg(int maxSeqs, int budget, int maxLoras, boolean prefixCaching) {
        return new EngineConfig(maxSeqs, budget, maxLoras, Math.max(maxLoras, 4), 64, 1L << 20, 4, 100, prefixCaching);
    }

    static Sequence seq(String id, int[] prompt, AdapterResidency.Entry adapter) {
        EngineRequest r = new EngineRequest(id, prompt, adapter == null ? null : adapter.name, SamplingParams.greedy(), 8);
        return new Sequence(r, null, adapter, 8, new OutputProcessor(r.params(), EngineTest.IDS, new int[]{2}, null, 8), () -> {});
    }

    static int[] range(int from, int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) a[i] = from + i;
        return a;
    }

    /** What a step did, as "id@from+n". */
    static List<String> run(Scheduler s, List<Scheduler.Work> work) {
        List<String> out = new ArrayList<>();
        for (Scheduler.Work w : work) {
            out.add(w.seq().id() + "@" + w.from() + "+" + w.n());
            s.advance(w);
            if (w.seq().computed == w.seq().tokens.size()) w.seq().tokens.add(50);   // as if a token were sampled
        }
        return out;
    }

    static final Scheduler.AdapterGate ANY = (a, inStep) -> true;

    @Test
    void promptsArePrefilledInChunksUnderTheTokenBudgetThenDecodeOneTokenEach() {
        Scheduler s = new Scheduler(cfg(8, 6, 4, false), new BlockManager(16, 4), Integer.MAX_VALUE, new EngineCounters());
        s.enqueue(seq("a", range(3, 5), null));
        s.enqueue(seq("b", range(3, 4), null));
        assertEquals(List.of("a@0+5", "b@0+1"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(List.of("a@5+1", "b@1+3"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(List.of("a@6+1", "b@4+1"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(2, s.running().size());
        assertTrue(s.waiting().isEmpty());
    }

    @Test
    void maxNumSeqsBoundsTheRunningBatch() {
        Scheduler s = new Scheduler(cfg(1, 64, 4, false), new BlockManager(16, 4), Integer.MAX_VALUE, new EngineCounters());
        s.enqueue(seq("a", range(3, 2), null));
        s.enqueue(seq("b", range(3, 2), null));
        assertEquals(List.of("a@0+2"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(List.of("a@2+1"), run(s, s.schedule(ANY, new ArrayList<>())));
        s.remove(s.running().getFirst());
        assertEquals(List.of("b@0+2"), run(s, s.schedule(ANY, new ArrayList<>())));
    }

    /** Two blocks for two sequences that each come to need two: the later one is preempted, freed, and queued first. */
    @Test
    void anEmptyPoolPreemptsTheMostRecentlyAdmittedSequence() {
        EngineCounters counters = new EngineCounters();
        BlockManager blocks = new BlockManager(2, 4);
        Scheduler s = new Scheduler(cfg(8, 64, 4, false), blocks, Integer.MAX_VALUE, counters);
        Sequence a = seq("a", range(3, 4), null), b = seq("b", range(3, 4), null);
        s.enqueue(a);
        s.enqueue(b);
        assertEquals(List.of("a@0+4", "b@0+4"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(0, blocks.available());
        assertEquals(List.of("a@4+1"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(1, b.preempted);
        assertEquals(0, b.computed);
        assertTrue(b.table.isEmpty());
        assertEquals(List.of(b), List.copyOf(s.waiting()));
        assertEquals(1, counters.preemptions.sum());
        s.remove(a);                                    // a finishes: b is recomputed from its first token
        assertEquals(List.of("b@0+5"), run(s, s.schedule(ANY, new ArrayList<>())));
    }

    /** A finished prompt's full blocks serve the next prompt that starts with the same tokens. */
    @Test
    void aSharedPrefixIsTakenFromTheCache() {
        BlockManager blocks = new BlockManager(16, 4);
        Scheduler s = new Scheduler(cfg(8, 64, 4, true), blocks, Integer.MAX_VALUE, new EngineCounters());
        int[] p = range(3, 9);
        Sequence first = seq("first", p, null);
        s.enqueue(first);
        assertEquals(List.of("first@0+9"), run(s, s.schedule(ANY, new ArrayList<>())));
        s.remove(first);
        int[] q = p.clone();
        q[8] = 99;                                      // the same two full blocks, another last token
        Sequence second = seq("second", q, null);
        s.enqueue(second);
        assertEquals(List.of("second@8+1"), run(s, s.schedule(ANY, new ArrayList<>())));
        assertEquals(8, second.cachedPrompt);
        assertEquals(2, second.hashedBlocks());
        assertEquals(8, blocks.prefixHits());
    }

    /** max_loras 1: a request on a second adapter waits without blocking a later one on the first. */
    @Test
    void aRequestOverMaxLorasIsSkippedNotBlocking() {
        Scheduler s = new Scheduler(cfg(8, 64, 1, false), new BlockManager(16, 4), Integer.MAX_VALUE, new EngineCounters());
        AdapterResidency.Entry x = new AdapterResidency.Entry("x", Path.of("x"), false, null), y = new AdapterResidency.Entry("y", Path.of("y"), false, null);
        s.enqueue(seq("a", range(3, 2), x));
        s.enqueue(seq("b", range(3, 2), y));
        s.enqueue(seq("c", range(3, 2), x));
        List<Sequence> touched = new ArrayList<>();
        assertEquals(List.of("a@0+2", "c@0+2"), run(s, s.schedule(ANY, touched)));
        assertEquals(3, touched.size(), "every considered sequence is listed");
        assertEquals(1, s.waiting().size());
        // an adapter that is not ready (loading) holds back only its own requests
        s.remove(s.running().get(0));
        s.remove(s.running().get(0));
        assertEquals(List.of(), run(s, s.schedule((a, inStep) -> a != y, new ArrayList<>())));
        assertEquals(List.of("b@0+2"), run(s, s.schedule(ANY, new ArrayList<>())));
    }

    /** A request that wants its prompt's logprobs gets at most the step's prompt rows, and no prefix-cache hit. */
    @Test
    void promptLogprobRowsAreCappedPerStep() {
        Scheduler s = new Scheduler(cfg(8, 64, 4, true), new BlockManager(16, 4), 3, new EngineCounters());
        EngineRequest r = new EngineRequest("lp", range(3, 7), null, SamplingParams.greedy().withPromptLogprobs(0), 2);
        Sequence lp = new Sequence(r, null, null, 2, new OutputProcessor(r.params(), EngineTest.IDS, new int[]{2}, null, 2), () -> {});
        s.enqueue(lp);
        assertEquals(List.of("lp@0+3"), run(s, s.schedule(ANY, new ArrayList<>())));
        lp.promptScoring.record(1, new float[300], 0, 300);
        lp.promptScoring.record(2, new float[300], 0, 300);
        lp.promptScoring.record(3, new float[300], 0, 300);
        assertEquals(List.of("lp@3+3"), run(s, s.schedule(ANY, new ArrayList<>())));
    }
}
