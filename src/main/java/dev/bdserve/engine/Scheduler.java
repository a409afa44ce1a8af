package dev.bdserve.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Decides each step's work, as vLLM's scheduler does. Under the token budget: first the running sequences, oldest
 * first (a decode token, or the next chunk of a prompt being prefilled in chunks), then waiting requests in arrival
 * order, admitting one only when max_num_seqs, max_loras (a request whose adapter would exceed it is skipped, not
 * blocking the queue), its adapter's residency and the KV pool allow. KV memory is paged: blocks are taken as
 * positions need them; when none is left, the most recently admitted running sequence is preempted (its blocks freed,
 * its tokens recomputed later, back at the front of the queue). Prompts are looked up in the prefix cache at
 * admission and full blocks enter it after each step, keyed by the adapter's content hash and every token up to
 * the block. A request that wants its prompt's logprobs computes its whole prompt (cached blocks have no logits)
 * and its chunks are capped so a step holds at most {@code promptRowsPerStep} prompt rows. Owned by the step thread.
 */
final class Scheduler {
    /** One scheduled piece of work: n tokens of seq starting at its position {@code from}. */
    record Work(Sequence seq, int from, int n) {}

    /** Whether a request's adapter can run in the step being scheduled (it may start making it resident). */
    @FunctionalInterface
    interface AdapterGate { boolean ready(AdapterResidency.Entry adapter, Set<AdapterResidency.Entry> inStep); }

    private final EngineConfig config;
    private final BlockManager blocks;
    private final int promptRowsPerStep;
    private final EngineCounters counters;
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();

    Scheduler(EngineConfig config, BlockManager blocks, int promptRowsPerStep, EngineCounters counters) {
        this.config = config;
        this.blocks = blocks;
        this.promptRowsPerStep = promptRowsPerStep;
        this.counters = counters;
    }

    void enqueue(Sequence s) { waiting.add(s); }

    List<Sequence> running() { return Collections.unmodifiableList(running); }

    Collection<Sequence> waiting() { return Collections.unmodifiableCollection(waiting); }

    boolean idle() { return running.isEmpty() && waiting.isEmpty(); }

    /** Whether a running sequence uses the adapter. */
    boolean inUse(AdapterResidency.Entry a) {
        for (Sequence s : running) if (s.adapter == a) return true;
        return false;
    }

    BlockManager blocks() { return blocks; }

    /**
     * The next step's work; empty if nothing can run yet (e.g. adapters loading). Lists in {@code touched} every
     * sequence it schedules or considers, so a failure in the step can end them.
     */
    List<Work> schedule(AdapterGate gate, List<Sequence> touched) {
        int budget = config.maxBatchedTokens();
        int promptRowsLeft = promptRowsPerStep;
        List<Work> work = new ArrayList<>();
        Set<AdapterResidency.Entry> stepAdapters = new HashSet<>();
        // 1. Running sequences, oldest first. When the pool runs out, the most recently admitted one is preempted (possibly this one).
        int i = 0;
        while (i < running.size() && budget > 0) {
            Sequence s = running.get(i);
            touched.add(s);
            int n = Math.min(s.tokens.size() - s.computed, budget);
            boolean promptRows = s.needsPromptRows();
            if (promptRows) n = Math.min(n, promptRowsLeft);
            if (n <= 0) { i++; continue; }
            boolean ok = true;
            while (!reserve(s, s.computed + n)) {
                Sequence victim = running.getLast();
                preempt(victim, work);
                if (victim == s) { ok = false; break; }
            }
            if (!ok) continue;                                  // s was the last one; the loop ends
            work.add(new Work(s, s.computed, n));
            if (s.adapter != null) stepAdapters.add(s.adapter);
            budget -= n;
            if (promptRows) promptRowsLeft -= n;
            i++;
        }
        // 2. Waiting requests in arrival order (preempted ones are at the front).
        List<Sequence> admitted = new ArrayList<>();
        for (var it = waiting.iterator(); it.hasNext() && budget > 0 && running.size() + admitted.size() < config.maxNumSeqs(); ) {
            Sequence s = it.next();
            touched.add(s);
            if (s.adapter != null) {
                if (!gate.ready(s.adapter, stepAdapters)) continue;                                   // loading, or no room now
                if (!stepAdapters.contains(s.adapter) && stepAdapters.size() >= config.maxLoras()) continue; // max_loras: skip, as vLLM does
            }
            boolean promptRows = s.needsPromptRows();
            if (promptRows && promptRowsLeft == 0) continue;                     // no prompt-logprob rows left in this step
            if (s.computed == 0 && s.table.isEmpty() && config.enablePrefixCaching() && !promptRows) lookupPrefix(s);
            int n = Math.min(s.tokens.size() - s.computed, budget);
            if (promptRows) n = Math.min(n, promptRowsLeft);
            if (!reserve(s, s.computed + n)) {
                release(s);
                break;                                                          // the pool is full: wait for blocks
            }
            it.remove();
            admitted.add(s);
            if (s.firstScheduled == 0) s.firstScheduled = System.nanoTime();
            work.add(new Work(s, s.computed, n));
            if (s.adapter != null) stepAdapters.add(s.adapter);
            budget -= n;
            if (promptRows) promptRowsLeft -= n;
        }
        running.addAll(admitted);
        return work;
    }

    /** After the step ran: the work's positions are in the cache, and its newly full blocks enter the prefix cache. */
    void advance(Work w) {
        Sequence s = w.seq();
        s.computed = w.from() + w.n();
        if (!config.enablePrefixCaching()) return;
        int bs = blocks.blockSize();
        int full = s.computed / bs;
        int[] toks = s.tokens.raw();
        for (int i = s.hashedBlocks(); i < full; i++) {
            long h = blocks.hash(i == 0 ? 0 : s.blockHash(i - 1), s.adapterHash(), toks, i * bs, (i + 1) * bs);
            s.addBlockHash(h);
            blocks.cacheFull(s.table.get(i), h, s.adapterHash(), toks, i * bs, i == 0 ? -1 : s.table.get(i - 1));
        }
    }

    /** Takes a sequence out (finished, failed or cancelled) and frees its blocks. */
    void remove(Sequence s) {
        running.remove(s);
        waiting.remove(s);
        release(s);
    }

    /** Takes the prompt's cached full blocks, if any, instead of computing them. */
    private void lookupPrefix(Sequence s) {
        int[] all = s.tokens.toArray();
        int[] hit = blocks.lookupPrefix(s.adapterHash(), all);
        long h = 0;
        for (int b = 0; b < hit.length; b++) {
            s.table.add(hit[b]);
            h = blocks.hash(h, s.adapterHash(), all, b * blocks.blockSize(), (b + 1) * blocks.blockSize());
            s.addBlockHash(h);
        }
        s.computed = hit.length * blocks.blockSize();
        s.cachedPrompt = Math.min(s.computed, s.promptLength());
    }

    /** Ensures s has blocks for {@code positions} positions; false if the pool cannot provide them. */
    private boolean reserve(Sequence s, int positions) {
        int need = blocks.blocksFor(positions) - s.table.size();
        if (need <= 0) return true;
        if (need > blocks.available()) return false;
        for (int i = 0; i < need; i++) s.table.add(blocks.allocate());
        return true;
    }

    /** Frees a running sequence's blocks and puts it back at the front of the queue, to be recomputed. */
    private void preempt(Sequence s, List<Work> work) {
        running.remove(s);
        work.removeIf(w -> w.seq() == s);
        release(s);
        s.preempted++;
        counters.preemptions.increment();
        waiting.addFirst(s);
    }

    private void release(Sequence s) {
        for (int i = 0; i < s.table.size(); i++) blocks.release(s.table.get(i));
        s.resetBlocks();
    }
}
