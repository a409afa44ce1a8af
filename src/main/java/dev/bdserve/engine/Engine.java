package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.parallel.TpGroupException;
import dev.bdserve.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The serving engine: one step loop that runs a model runner (one rank or a TP group) over a stream of
 * requests arriving and finishing at any time (iteration-level continuous batching, as in Orca / vLLM).
 *
 * <p>Each step it schedules, under a token budget: first the running sequences (one decode token each, or
 * the next chunk of a prompt being prefilled in chunks), then waiting requests in arrival order, admitting
 * a request only when the sequence limit, the per-step adapter limit (max_loras; a request whose adapter
 * would exceed it is skipped, not blocking the queue) and the KV pool allow. KV memory is paged: blocks
 * are taken as positions are needed; when none is left the most recently admitted running sequence is
 * preempted (its blocks freed, its tokens recomputed later; it goes back to the front of the queue).
 * Full blocks enter a prefix cache keyed by the adapter's content hash and all tokens up to the block.
 *
 * <p>A request may ask for its prompt's log-probabilities ({@link SamplingParams#promptLogprobs()}): then the LM head
 * also runs at every prompt position of its chunks (other requests' chunks still get logits at their last position
 * only), such a request computes its whole prompt instead of taking prefix-cache hits, and its prompt chunks are capped
 * so that a step holds at most {@link #PROMPT_LOGPROB_FLOATS_PER_STEP} floats of prompt logits (at least one row).
 *
 * <p>Adapters are registered by name; a registered adapter is resident (laid out on every rank, in
 * lock-step, by the step loop) or not; at most max_cpu_loras are resident and idle unpinned ones are
 * evicted least recently used first. Reading and validating adapter files happens off the step loop.
 *
 * <p>Failures stay with what caused them: an adapter that cannot run on the group is refused at registration; a
 * failure in one request's sampling or output ends that request alone (500); a failure in a step's shared work (the
 * forward pass, scheduling) ends that step's requests (500) and the loop steps on. Only a lost TP rank stops the
 * engine: then every request gets a 503.
 *
 * <p>The model's vocabulary may be larger than the tokenizer's (real checkpoints pad it); ids past the tokenizer's
 * are masked before sampling. A smaller one is refused.
 *
 * <p>Thread-safety: {@link #submit}, {@link RequestHandle#cancel}, adapter registration and
 * {@link #stats} may be called from any thread; listeners are called on the step thread.
 */
public final class Engine implements AutoCloseable {
    /**
     * Prompt-logprob rows of one step at most, in floats of logits (rows × vocab): 16 MiB of fp32, which bounds the
     * logits buffers every rank grows to (Llama 3's vocabulary of 128,256: 32 prompt positions per step).
     */
    static final long PROMPT_LOGPROB_FLOATS_PER_STEP = 1L << 22;

    private final ModelRunner runner;
    private final Tokenizer tokenizer;
    private final AdapterLoader adapterLoader;
    private final int tokenVocab;                               // ids the tokenizer knows; the model's rows past them are masked
    private final EngineConfig config;
    private final LlamaConfig model;
    private final BlockManager blocks;
    private final int promptRowsPerStep;                        // prompt-logprob rows per step at most
    private final Thread loop;
    private final ExecutorService loader;                       // adapter files are read here, off the step loop
    private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();
    private final Map<String, AdapterEntry> adapters = new ConcurrentHashMap<>();

    // Step-loop state (touched by the loop thread only).
    private final ArrayDeque<Seq> waiting = new ArrayDeque<>();
    private final List<Seq> running = new ArrayList<>();
    private int residentCount;
    private long stepCounter;

    // Observable state.
    private volatile boolean accepting = true;
    private volatile boolean stopping;
    private volatile Throwable broken;
    private final java.util.concurrent.atomic.AtomicInteger queued = new java.util.concurrent.atomic.AtomicInteger(); // submitted, not yet finished
    private volatile int runningCount, waitingCount;
    private volatile double kvUsage;
    private volatile long prefixQueries, prefixHits;
    private volatile List<String> runningAdapters = List.of(), waitingAdapters = List.of();
    private final AtomicLong promptTokens = new AtomicLong(), generationTokens = new AtomicLong(), preemptions = new AtomicLong(), steps = new AtomicLong();
    private final Map<String, AtomicLong> finished = new ConcurrentHashMap<>();
    private final Map<String, long[]> perAdapter = new ConcurrentHashMap<>(); // name → {requests, prompt tokens, generated tokens}

    /** An adapter known by name. */
    private static final class AdapterEntry {
        final String name;
        final Path path;
        final boolean pinned;
        volatile LoraAdapter adapter;   // parsed and validated; null when evicted from memory
        volatile int runnerId = -1;     // ≥ 0 when resident on every rank
        volatile boolean loading;       // being read off the loop, or a failure being reported: not schedulable
        volatile boolean removed;
        final java.util.concurrent.atomic.AtomicInteger active = new java.util.concurrent.atomic.AtomicInteger();
        long lastUsed;

        AdapterEntry(String name, Path path, boolean pinned, LoraAdapter adapter) {
            this.name = name;
            this.path = path;
            this.pinned = pinned;
            this.adapter = adapter;
        }
    }

    /** A request's sequence; belongs to the step loop. */
    private final class Seq implements RequestHandle {
        final EngineRequest req;
        final RequestListener listener;
        final AdapterEntry adapter;        // null for the base model
        final int maxTokens;
        final SplittableRandom rng;
        final Tokenizer.StreamDecoder decoder = tokenizer.newStreamDecoder();
        final List<Integer> tokens = new ArrayList<>();   // prompt then generated
        final List<Integer> table = new ArrayList<>();    // KV blocks
        final List<Long> blockHashes = new ArrayList<>(); // prefix hashes of the full blocks computed so far
        final Map<Integer, Integer> counts = new HashMap<>(); // generated token → occurrences (penalties)
        final StringBuilder text = new StringBuilder();
        final List<Integer> generated = new ArrayList<>();
        final List<Double> itl = new ArrayList<>();
        final long arrival = System.nanoTime();
        long firstScheduled, firstToken, lastToken;
        int computed;                      // positions whose KV is in the cache
        int cachedPrompt, preempted;
        int emitted;                       // chars of text given to the listener
        volatile boolean cancelled;
        boolean done;
        // Prompt logprobs, only for a request that asks for them (else null): filled as its prompt chunks run.
        final float[] promptLp;                                   // [P] log p(prompt[i] | prompt[<i]); NaN at 0
        final List<List<TokenEvent.TopLogprob>> promptTop;        // [P] the most likely tokens at each position
        int promptLpNext = 1;                                     // first prompt index whose logprob is not known yet
        boolean promptLpSent;

        Seq(EngineRequest req, RequestListener listener, AdapterEntry adapter, int maxTokens) {
            this.req = req;
            this.listener = listener;
            this.adapter = adapter;
            this.maxTokens = maxTokens;
            Long seed = req.params().seed();
            this.rng = seed != null ? new SplittableRandom(seed) : new SplittableRandom();
            for (int t : req.prompt()) tokens.add(t);
            if (req.params().promptLogprobs() >= 0) {
                int p = req.prompt().length;
                promptLp = new float[p];
                java.util.Arrays.fill(promptLp, Float.NaN);
                promptTop = new ArrayList<>(Collections.nCopies(p, List.<TokenEvent.TopLogprob>of()));
            } else {
                promptLp = null;
                promptTop = null;
            }
        }

        /** True while some prompt position's logprob is still to be computed. */
        boolean needsPromptRows() { return promptLp != null && promptLpNext < req.prompt().length; }

        @Override public String id() { return req.id(); }

        @Override public void cancel() {
            cancelled = true;
            LockSupport.unpark(loop);
        }

        String adapterHash() { return adapter == null ? "" : adapter.adapter != null ? adapter.adapter.contentHash() : "?"; }
    }

    /** Throws {@link IllegalArgumentException} when the tokenizer knows more ids than the model has rows of logits. */
    public Engine(ModelRunner runner, Tokenizer tokenizer, EngineConfig config) {
        this(runner, tokenizer, config, PROMPT_LOGPROB_FLOATS_PER_STEP, AdapterLoader.PEFT);
    }

    /** With another bound on the prompt-logprob logits of a step (tests use a small one to split prompts). */
    Engine(ModelRunner runner, Tokenizer tokenizer, EngineConfig config, long promptLogprobFloatsPerStep) {
        this(runner, tokenizer, config, promptLogprobFloatsPerStep, AdapterLoader.PEFT);
    }

    /** With another adapter loader (tests use failing ones). */
    Engine(ModelRunner runner, Tokenizer tokenizer, EngineConfig config, long promptLogprobFloatsPerStep, AdapterLoader adapterLoader) {
        this.runner = runner;
        this.tokenizer = tokenizer;
        this.adapterLoader = adapterLoader;
        this.config = config;
        this.model = runner.config();
        this.tokenVocab = tokenizer.vocabSize();
        if (tokenVocab > model.vocabSize())
            throw new IllegalArgumentException("the tokenizer knows " + tokenVocab + " token ids but the model's vocabulary has only "
                    + model.vocabSize() + " rows (vocab_size): the tokenizer does not belong to this model");
        this.blocks = new BlockManager(runner.kvBlocks(), runner.kvBlockSize());
        this.promptRowsPerStep = (int) Math.min(Integer.MAX_VALUE, Math.max(1, promptLogprobFloatsPerStep / model.vocabSize()));
        this.loader = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().name("bdserve-adapter-loader").unstarted(r));
        this.loop = Thread.ofPlatform().name("bdserve-engine").unstarted(this::run);
        this.loop.start();
    }

    public LlamaConfig modelConfig() { return model; }
    public Tokenizer tokenizer() { return tokenizer; }
    public EngineConfig config() { return config; }
    public ModelRunner runner() { return runner; }

    /** False once the model group failed (e.g. a lost TP rank); then every request gets a 503. */
    public boolean healthy() { return broken == null && loop.isAlive(); }

    // ------------------------------------------------------------------ requests

    /** Queues a request. Throws {@link EngineException} (400, 404, 429, 503) when it cannot be accepted. */
    public RequestHandle submit(EngineRequest r, RequestListener listener) {
        if (broken != null) throw new EngineException(503, "The engine is unavailable: " + broken.getMessage());
        if (!accepting) throw new EngineException(503, "The server is shutting down.");
        int ctx = model.maxPositions();
        int p = r.prompt().length;
        if (p >= ctx || r.maxTokens() > 0 && p + r.maxTokens() > ctx)
            throw new EngineException(400, "This model's maximum context length is " + ctx + " tokens. However, you requested "
                    + (p + Math.max(r.maxTokens(), 0)) + " tokens (" + p + " in the messages, " + Math.max(r.maxTokens(), 0)
                    + " in the completion). Please reduce the length of the messages or completion.");
        for (int t : r.prompt())
            if (t < 0 || t >= model.vocabSize()) throw new EngineException(400, "Token id " + t + " is out of vocabulary (size " + model.vocabSize() + ").");
        AdapterEntry a = null;
        if (r.adapter() != null) {
            a = adapters.get(r.adapter());
            if (a == null || a.removed) throw new EngineException(404, "The model `" + r.adapter() + "` does not exist.");
        }
        if (queued.get() >= config.maxWaiting() + config.maxNumSeqs())
            throw new EngineException(429, "The server is overloaded: " + queued.get() + " requests are queued. Please retry later.");
        int maxTokens = r.maxTokens() >= 0 ? r.maxTokens() : ctx - p;
        if (blocks.blocksFor(p + maxTokens) > blocks.numBlocks())
            throw new EngineException(400, "The request needs up to " + (p + maxTokens) + " tokens of KV cache, more than the "
                    + blocks.numBlocks() * blocks.blockSize() + " the server's KV cache holds. Please reduce the prompt or max_tokens.");
        Seq s = new Seq(r, listener, a, maxTokens);
        if (a != null) a.active.incrementAndGet();
        queued.incrementAndGet();
        inbox.add(() -> waiting.add(s));
        LockSupport.unpark(loop);
        return s;
    }

    // ------------------------------------------------------------------ adapters

    /**
     * Registers an adapter by name: reads and validates it now (on the calling thread) and makes it
     * resident on every rank before its first request runs. Throws {@link EngineException} 400 with the
     * loader's message for a bad adapter, or for a name already in use.
     */
    public AdapterInfo registerAdapter(String name, Path dir, boolean pinned) {
        if (name == null || name.isBlank()) throw new EngineException(400, "lora_name must not be empty.");
        if (adapters.containsKey(name) && !adapters.get(name).removed)
            throw new EngineException(400, "The lora adapter '" + name + "' has already been loaded.");
        LoraAdapter la;
        try {
            la = adapterLoader.load(name, dir, model, config.maxLoraRank());
            runner.checkAdapter(la);            // refused now, not at its first request
        } catch (ModelFormatException | IllegalArgumentException e) {
            throw new EngineException(400, "Failed to load LoRA adapter '" + name + "': " + e.getMessage(), e);
        }
        AdapterEntry e = new AdapterEntry(name, dir, pinned, la);
        if (adapters.putIfAbsent(name, e) != null && !adapters.get(name).removed)
            throw new EngineException(400, "The lora adapter '" + name + "' has already been loaded.");
        adapters.put(name, e);
        return info(e);
    }

    /**
     * Unregisters an adapter: new requests for it get 404 at once; its running and waiting requests may
     * finish for up to {@code wait}, then those left are cancelled; then every rank drops it.
     */
    public void unregisterAdapter(String name, Duration wait) {
        AdapterEntry e = adapters.get(name);
        if (e == null || e.removed) throw new EngineException(404, "The lora adapter '" + name + "' cannot be found.");
        e.removed = true;
        long deadline = System.nanoTime() + wait.toNanos();
        while (e.active.get() > 0 && System.nanoTime() < deadline && healthy()) {
            try { Thread.sleep(5); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); break; }
        }
        inbox.add(() -> {
            for (Seq s : running) if (s.adapter == e) s.cancelled = true;
            for (Seq s : waiting) if (s.adapter == e) s.cancelled = true;
            reapCancelled();
            if (e.runnerId >= 0) { runner.removeAdapter(e.runnerId); e.runnerId = -1; residentCount--; }
            e.adapter = null;
            adapters.remove(name, e);
        });
        LockSupport.unpark(loop);
    }

    public List<AdapterInfo> adapters() {
        List<AdapterInfo> out = new ArrayList<>();
        for (AdapterEntry e : new TreeMap<>(adapters).values()) if (!e.removed) out.add(info(e));
        return out;
    }

    private AdapterInfo info(AdapterEntry e) {
        LoraAdapter a = e.adapter;
        return new AdapterInfo(e.name, e.path, e.runnerId >= 0, e.pinned, e.active.get(), a == null ? 0 : a.maxRank(),
                a != null && a.isBlockDiagonal(), null);
    }

    // ------------------------------------------------------------------ lifecycle

    /** Stops admitting, lets in-flight requests finish for up to {@code grace}, then cancels the rest and stops. */
    public void shutdown(Duration grace) {
        accepting = false;
        long deadline = System.nanoTime() + grace.toNanos();
        while (queued.get() > 0 && System.nanoTime() < deadline && loop.isAlive()) {
            try { Thread.sleep(10); } catch (InterruptedException e) { Thread.currentThread().interrupt(); break; }
        }
        close();
    }

    @Override
    public void close() {
        accepting = false;
        if (!stopping) {
            stopping = true;
            LockSupport.unpark(loop);
            try { loop.join(30_000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        }
        loader.shutdownNow();
    }

    // ------------------------------------------------------------------ the step loop

    private void run() {
        try {
            while (true) {
                Runnable op;
                while ((op = inbox.poll()) != null) runOp(op);
                if (stopping) break;
                reapCancelled();
                if (running.isEmpty() && waiting.isEmpty()) {
                    publish();
                    LockSupport.parkNanos(50_000_000);
                    continue;
                }
                if (!step()) LockSupport.parkNanos(1_000_000); // nothing could run yet (e.g. adapters loading)
            }
        } catch (Throwable t) {
            broken = t;
        }
        // Fail or abort whatever is left.
        Throwable b = broken;
        Runnable op;
        while ((op = inbox.poll()) != null) {
            try { op.run(); } catch (RuntimeException ignored) { /* shutting down */ }
        }
        for (Seq s : new ArrayList<>(running)) end(s, b == null ? "abort" : null, b);
        for (Seq s : new ArrayList<>(waiting)) end(s, b == null ? "abort" : null, b);
        running.clear();
        waiting.clear();
        publish();
    }

    /** Runs an operation queued for the loop; only a lost rank escapes it (an operation's other failure is its own). */
    private static void runOp(Runnable op) {
        try {
            op.run();
        } catch (TpGroupException e) {
            throw e;
        } catch (RuntimeException e) {
            System.err.println("bdserve: an engine operation failed (the engine goes on): " + describe(e));
        }
    }

    /** A failure's message, or its class where it has none (an OutOfMemoryError, say). */
    static String describe(Throwable e) {
        if (e.getMessage() == null || e.getMessage().isBlank()) return e.getClass().getName();
        return e instanceof Error ? e.getClass().getName() + ": " + e.getMessage() : e.getMessage();
    }

    /** Cancelled requests finish with "abort" and free their blocks. */
    private void reapCancelled() {
        for (Seq s : new ArrayList<>(running)) if (s.cancelled) end(s, "abort", null);
        for (Seq s : new ArrayList<>(waiting)) if (s.cancelled) end(s, "abort", null);
    }

    /** One scheduled piece of work: n tokens of sequence s starting at its position {@code from}. */
    private record Work(Seq seq, int from, int n) {}

    /**
     * Schedules and runs one step; false if nothing could be scheduled. A failure of the step's shared work ends the
     * requests it had scheduled or was considering (500); a lost rank propagates and stops the engine.
     */
    private boolean step() {
        List<Seq> touched = new ArrayList<>();
        try {
            return scheduleAndRun(touched);
        } catch (TpGroupException e) {
            throw e;
        } catch (RuntimeException | Error e) {
            EngineException ex = new EngineException(500, "Internal error in a model step: " + describe(e), e);
            for (Seq s : touched) end(s, null, ex);
            publish();
            return true;
        }
    }

    /** Schedules and runs one step, listing in {@code touched} each sequence it schedules or considers. */
    private boolean scheduleAndRun(List<Seq> touched) {
        int budget = config.maxBatchedTokens();
        int promptRowsLeft = promptRowsPerStep;
        List<Work> work = new ArrayList<>();
        Set<AdapterEntry> stepAdapters = new HashSet<>();
        // 1. Running sequences, oldest first: a decode token, or the next prefill chunk. When the pool runs
        //    out, the most recently admitted running sequence is preempted (possibly this one).
        int i = 0;
        while (i < running.size() && budget > 0) {
            Seq s = running.get(i);
            touched.add(s);
            int n = Math.min(s.tokens.size() - s.computed, budget);
            boolean promptRows = s.needsPromptRows();
            if (promptRows) n = Math.min(n, promptRowsLeft);
            if (n <= 0) { i++; continue; }
            boolean ok = true;
            while (!reserve(s, s.computed + n)) {
                Seq victim = running.get(running.size() - 1);
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
        List<Seq> admitted = new ArrayList<>();
        for (var it = waiting.iterator(); it.hasNext() && budget > 0 && running.size() + admitted.size() < config.maxNumSeqs(); ) {
            Seq s = it.next();
            touched.add(s);
            if (s.adapter != null) {
                if (!ensureResident(s.adapter, stepAdapters)) continue;           // loading, or no room now
                if (!stepAdapters.contains(s.adapter) && stepAdapters.size() >= config.maxLoras()) continue; // max_loras: skip, as vLLM does
            }
            boolean promptRows = s.needsPromptRows();
            if (promptRows && promptRowsLeft == 0) continue;                     // no prompt-logprob rows left in this step
            if (s.computed == 0 && s.table.isEmpty() && config.enablePrefixCaching() && !promptRows) { // cached blocks have no logits
                int[] hit = blocks.lookupPrefix(s.adapterHash(), toArray(s.tokens));
                for (int b : hit) s.table.add(b);
                s.computed = hit.length * blocks.blockSize();
                s.cachedPrompt = Math.min(s.computed, s.req.prompt().length);
                long h = 0;
                int[] all = toArray(s.tokens);
                for (int b = 0; b < hit.length; b++) {
                    h = BlockManager.blockHash(h, s.adapterHash(), all, b * blocks.blockSize(), (b + 1) * blocks.blockSize());
                    s.blockHashes.add(h);
                }
            }
            int n = Math.min(s.tokens.size() - s.computed, budget);
            if (promptRows) n = Math.min(n, promptRowsLeft);
            if (!reserve(s, s.computed + n)) {
                releaseBlocks(s);
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
        if (work.isEmpty()) { publish(); return false; }
        runStep(work);
        publish();
        return true;
    }

    /** Ensures s has blocks for {@code positions} positions; false if the pool cannot provide them. */
    private boolean reserve(Seq s, int positions) {
        int need = blocks.blocksFor(positions) - s.table.size();
        if (need <= 0) return true;
        if (need > blocks.available()) return false;
        for (int i = 0; i < need; i++) s.table.add(blocks.allocate());
        return true;
    }

    /** Frees a running sequence's blocks and puts it back at the front of the queue, to be recomputed. */
    private void preempt(Seq s, List<Work> work) {
        running.remove(s);
        work.removeIf(w -> w.seq == s);
        releaseBlocks(s);
        s.computed = 0;
        s.preempted++;
        preemptions.incrementAndGet();
        waiting.addFirst(s);
    }

    private void releaseBlocks(Seq s) {
        for (int b : s.table) blocks.release(b);
        s.table.clear();
        s.blockHashes.clear();
        s.computed = 0;
    }

    /** True when the adapter is resident; otherwise starts making it so (off the loop) and returns false. */
    private boolean ensureResident(AdapterEntry a, Set<AdapterEntry> inStep) {
        if (a.removed) return false;
        if (a.runnerId >= 0) { a.lastUsed = ++stepCounter; return true; }
        if (a.loading) return false;
        if (a.adapter == null) {                          // evicted earlier: read it again off the loop
            a.loading = true;
            loader.submit(() -> {
                try {
                    LoraAdapter la = adapterLoader.load(a.name, a.path, model, config.maxLoraRank());
                    runner.checkAdapter(la);
                    inbox.add(() -> { a.adapter = la; a.loading = false; });
                } catch (Throwable e) {                   // an Error too: the adapter must not stay "loading"
                    inbox.add(() -> { a.loading = false; failAdapter(a, e); });
                }
                LockSupport.unpark(loop);
            });
            return false;
        }
        if (residentCount >= config.maxCpuLoras() && !evictOne(inStep)) return false;
        try {
            a.runnerId = runner.addAdapter(a.adapter);    // every rank lays out its shard, in lock-step
        } catch (TpGroupException e) {
            throw e;
        } catch (RuntimeException e) {                    // refused before any rank saw it: its requests fail, the engine goes on
            a.loading = true;                             // not tried again by the rest of this step
            inbox.add(() -> { a.loading = false; a.adapter = null; failAdapter(a, e); });
            return false;
        }
        residentCount++;
        a.lastUsed = ++stepCounter;
        return true;
    }

    /** Evicts the least recently used resident adapter that is idle and unpinned; false if none is. */
    private boolean evictOne(Set<AdapterEntry> inStep) {
        AdapterEntry lru = null;
        for (AdapterEntry e : adapters.values())
            if (e.runnerId >= 0 && !e.pinned && !inStep.contains(e) && !inUse(e) && (lru == null || e.lastUsed < lru.lastUsed)) lru = e;
        if (lru == null) return false;
        runner.removeAdapter(lru.runnerId);
        lru.runnerId = -1;
        lru.adapter = null;                               // free its memory; it is read again when needed
        residentCount--;
        return true;
    }

    private boolean inUse(AdapterEntry e) {
        for (Seq s : running) if (s.adapter == e) return true;
        return false;
    }

    /** Fails the requests waiting for an adapter that could not be loaded: 400 for a bad adapter, 500 for anything else. */
    private void failAdapter(AdapterEntry a, Throwable e) {
        int status = e instanceof ModelFormatException || e instanceof IllegalArgumentException ? 400 : 500;
        EngineException ex = new EngineException(status, "Failed to load LoRA adapter '" + a.name + "': " + describe(e), e);
        for (Seq s : new ArrayList<>(waiting)) if (s.adapter == a) end(s, null, ex);
    }

    /**
     * What one row of a step's logits is for: sampling the next token of seq (target −1), or the logprob of
     * prompt token {@code target} of seq (the row of the position before it).
     */
    private record LogitRow(Seq seq, int target) {}

    private void runStep(List<Work> work) {
        int T = 0;
        for (Work w : work) T += w.n;
        int S = work.size();
        int[] toks = new int[T], pos = new int[T], idx = new int[T], ads = new int[T];
        int[][] tables = new int[S][];
        List<Integer> rows = new ArrayList<>();          // token indices whose logits are wanted, in output order
        List<LogitRow> rowUse = new ArrayList<>();       // what each of those rows is for
        List<Seq> promptOnly = new ArrayList<>();        // max_tokens 0: the prompt completes in this step, nothing is sampled
        int k = 0;
        for (int i = 0; i < S; i++) {
            Work w = work.get(i);
            Seq s = w.seq;
            tables[i] = toArray(s.table);
            int aid = s.adapter == null ? -1 : s.adapter.runnerId;
            int promptLen = s.req.prompt().length;
            for (int j = 0; j < w.n; j++) {
                int p = w.from + j;
                toks[k] = s.tokens.get(p);
                pos[k] = p;
                idx[k] = i;
                ads[k] = aid;
                // the logits at prompt position p give the logprob of prompt token p + 1 (unless known from before a preemption)
                if (s.promptLp != null && p + 1 < promptLen && p + 1 >= s.promptLpNext) { rows.add(k); rowUse.add(new LogitRow(s, p + 1)); }
                k++;
            }
            if (w.from + w.n == s.tokens.size()) {                                   // the chunk reaches the end
                if (s.maxTokens > 0) { rows.add(k - 1); rowUse.add(new LogitRow(s, -1)); }
                else promptOnly.add(s);
            }
        }
        int vocab = model.vocabSize();
        float[] logits = new float[rows.size() * vocab];                             // [rows, vocab]
        runner.forward(new StepBatch(toks, pos, idx, ads, toArray(rows), tables), logits);   // a failure here is the step's
        steps.incrementAndGet();
        for (Work w : work) {
            Seq s = w.seq;
            int promptEnd = s.req.prompt().length;
            int newPrompt = Math.max(0, Math.min(w.from + w.n, promptEnd) - w.from);
            if (newPrompt > 0 && s.preempted == 0) promptTokens.addAndGet(newPrompt);
            s.computed = w.from + w.n;
            cacheFullBlocks(s);
        }
        // From here on each row belongs to one request: a failure in it ends that request alone.
        for (int r = 0; r < rowUse.size(); r++) {
            LogitRow u = rowUse.get(r);
            if (u.target() < 0 || u.seq().done) continue;
            try {
                recordPromptLogprob(u.seq(), u.target(), logits, r * vocab, vocab);
            } catch (RuntimeException e) {
                failRequest(u.seq(), "computing its prompt logprobs", e);
            }
        }
        for (Work w : work)
            if (w.seq.promptLp != null && !w.seq.done && !w.seq.promptLpSent && w.seq.computed >= w.seq.req.prompt().length) sendPromptLogprobs(w.seq);
        long now = System.nanoTime();
        for (int r = 0; r < rowUse.size(); r++) {
            LogitRow u = rowUse.get(r);
            if (u.target() >= 0 || u.seq().done) continue;
            try {
                accept(u.seq(), logits, r * vocab, vocab, now);
            } catch (RuntimeException e) {
                failRequest(u.seq(), "sampling its next token", e);
            }
        }
        for (Seq s : promptOnly) end(s, "length", null);
    }

    /** Ends one request with a 500 naming what failed, at which token; the others in its step go on. */
    private void failRequest(Seq s, String stage, RuntimeException e) {
        end(s, null, new EngineException(500, "Request " + s.req.id() + " failed while " + stage + " (after " + s.generated.size()
                + " generated tokens): " + describe(e), e));
    }

    /** Records log p(prompt[target] | prompt[<target]) and the top alternatives from the logits row at off. */
    private static void recordPromptLogprob(Seq s, int target, float[] logits, int off, int vocab) {
        double lse = logSumExp(logits, off, vocab);
        s.promptLp[target] = (float) (logits[off + s.req.prompt()[target]] - lse);
        s.promptTop.set(target, topLogprobs(logits, off, vocab, s.req.params().promptLogprobs(), lse));
        s.promptLpNext = target + 1;
    }

    /** Gives the listener the prompt's logprobs, once, as soon as the whole prompt has been computed. */
    private static void sendPromptLogprobs(Seq s) {
        s.promptLpSent = true;
        try {
            s.listener.onPromptLogprobs(new PromptLogprobs(s.req.prompt().clone(), s.promptLp.clone(), s.promptTop));
        } catch (RuntimeException e) {
            s.cancelled = true;                            // a listener that throws has lost its client
        }
    }

    /** Enters the sequence's newly completed full blocks into the prefix cache. */
    private void cacheFullBlocks(Seq s) {
        if (!config.enablePrefixCaching()) return;
        int bs = blocks.blockSize();
        int full = s.computed / bs;
        if (s.blockHashes.size() >= full) return;
        int[] toks = toArray(s.tokens);
        for (int i = s.blockHashes.size(); i < full; i++) {
            long prev = i == 0 ? 0 : s.blockHashes.get(i - 1);
            long h = BlockManager.blockHash(prev, s.adapterHash(), toks, i * bs, (i + 1) * bs);
            s.blockHashes.add(h);
            blocks.cacheFull(s.table.get(i), h);
        }
    }

    /** Samples the next token of s, emits it, and applies the stop rules. */
    private void accept(Seq s, float[] logits, int off, int vocab, long now) {
        SamplingParams p = s.req.params();
        if (tokenVocab < vocab) java.util.Arrays.fill(logits, off + tokenVocab, off + vocab, Float.NEGATIVE_INFINITY); // padding rows
        if (p.hasPenalties())
            for (var e : s.counts.entrySet())
                logits[off + e.getKey()] -= (float) (p.presencePenalty() + p.frequencyPenalty() * e.getValue());
        int tok = Sampler.sample(logits, off, vocab, p, s.rng);
        float lp = Float.NaN;
        List<TokenEvent.TopLogprob> top = List.of();
        if (p.logprobs() >= 0) {
            double lse = logSumExp(logits, off, vocab);
            lp = (float) (logits[off + tok] - lse);
            top = topLogprobs(logits, off, vocab, p.logprobs(), lse);
        }
        if (s.firstToken == 0) s.firstToken = now;
        else s.itl.add((now - s.lastToken) / 1e9);
        s.lastToken = now;
        if (!p.ignoreEos() && isEos(tok)) {
            s.text.append(s.decoder.flush());
            int cut = p.stop().isEmpty() ? -1 : firstStop(s.text, p.stop());
            if (cut >= 0) s.text.setLength(cut);
            end(s, "stop", null);
            return;
        }
        s.tokens.add(tok);
        s.generated.add(tok);
        s.counts.merge(tok, 1, Integer::sum);
        generationTokens.incrementAndGet();
        perAdapter.computeIfAbsent(adapterName(s), x -> new long[3])[2]++;
        s.text.append(s.decoder.push(tok));
        int cut = p.stop().isEmpty() ? -1 : firstStop(s.text, p.stop());
        if (cut >= 0) {
            s.text.setLength(cut);
            emit(s, tok, lp, top, true);
            end(s, "stop", null);
            return;
        }
        boolean atLimit = s.generated.size() >= s.maxTokens || s.tokens.size() >= model.maxPositions();
        if (atLimit) s.text.append(s.decoder.flush());
        emit(s, tok, lp, top, atLimit);
        if (atLimit) end(s, "length", null);
    }

    /** Gives the listener the token and whatever text is safe to show (a possible stop-string prefix is held back). */
    private void emit(Seq s, int tok, float lp, List<TokenEvent.TopLogprob> top, boolean last) {
        int hold = last ? 0 : s.req.params().stop().stream().mapToInt(String::length).max().orElse(1) - 1;
        int safe = Math.max(s.emitted, s.text.length() - hold);
        String delta = s.text.substring(s.emitted, safe);
        s.emitted = safe;
        try {
            s.listener.onToken(new TokenEvent(tok, delta, lp, top));
        } catch (RuntimeException e) {
            s.cancelled = true;                            // a listener that throws has lost its client
        }
    }

    /** Finishes (reason != null) or fails a sequence, frees its blocks and reports it once. */
    private void end(Seq s, String reason, Throwable error) {
        if (s.done) return;
        s.done = true;
        running.remove(s);
        waiting.remove(s);
        releaseBlocks(s);
        queued.decrementAndGet();
        if (s.adapter != null) s.adapter.active.decrementAndGet();
        String key = reason != null ? reason : "error";
        finished.computeIfAbsent(key, x -> new AtomicLong()).incrementAndGet();
        long[] pa = perAdapter.computeIfAbsent(adapterName(s), x -> new long[3]);
        pa[0]++;
        pa[1] += s.req.prompt().length;
        long now = System.nanoTime();
        double[] itl = s.itl.stream().mapToDouble(Double::doubleValue).toArray();
        RequestMetrics m = new RequestMetrics(
                s.firstScheduled == 0 ? (now - s.arrival) / 1e9 : (s.firstScheduled - s.arrival) / 1e9,
                s.firstToken == 0 ? Double.NaN : (s.firstToken - s.arrival) / 1e9, itl, (now - s.arrival) / 1e9,
                s.req.prompt().length, s.generated.size(), s.cachedPrompt, s.preempted);
        try {
            if (reason != null) {
                if (s.emitted < s.text.length() && !reason.equals("abort")) {   // text held back until now
                    String rest = s.text.substring(s.emitted);
                    s.emitted = s.text.length();
                    s.listener.onToken(new TokenEvent(-1, rest, Float.NaN, List.of()));
                }
                s.listener.onFinish(new RequestResult(s.req.id(), s.text.toString(), toArray(s.generated), reason, m));
            } else {
                EngineException ex = error instanceof EngineException ee ? ee
                        : new EngineException(503, "The model group failed: " + (error == null ? "unknown error" : error.getMessage()), error);
                s.listener.onError(ex);
            }
        } catch (RuntimeException ignored) {
            // the listener's problem; the engine goes on
        }
    }

    private String adapterName(Seq s) { return s.adapter == null ? "" : s.adapter.name; }

    private boolean isEos(int tok) {
        for (int e : tokenizer.eosIds()) if (e == tok) return true;
        for (int e : model.eosTokenIds()) if (e == tok) return true;
        return false;
    }

    private static int firstStop(CharSequence text, List<String> stops) {
        String t = text.toString();
        int best = -1;
        for (String stop : stops) {
            int i = t.indexOf(stop);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    /** log Σ exp(logits[off .. off+n)), in fp64; a log-probability is then logit − this. */
    static double logSumExp(float[] logits, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        return max + Math.log(sum);
    }

    /**
     * The k largest of logits[off .. off+n) as log-probabilities (logit − lse), largest first, the lower id first on
     * ties. One pass keeping a sorted list of k (k ≤ 20), instead of sorting the vocabulary.
     */
    static List<TokenEvent.TopLogprob> topLogprobs(float[] logits, int off, int n, int k, double lse) {
        k = Math.min(k, n);
        if (k <= 0) return List.of();
        int[] ids = new int[k];                            // [k] kept ids, by logit descending
        int kept = 0;
        for (int i = 0; i < n; i++) {
            float v = logits[off + i];
            if (kept == k && v <= logits[off + ids[k - 1]]) continue;   // not above the smallest kept one (ties keep the lower id)
            int at = kept == k ? k - 1 : kept++;
            while (at > 0 && v > logits[off + ids[at - 1]]) { ids[at] = ids[at - 1]; at--; }
            ids[at] = i;
        }
        List<TokenEvent.TopLogprob> out = new ArrayList<>(k);
        for (int id : ids) out.add(new TokenEvent.TopLogprob(id, (float) (logits[off + id] - lse)));
        return out;
    }

    private static int[] toArray(List<Integer> l) {
        int[] a = new int[l.size()];
        for (int i = 0; i < a.length; i++) a[i] = l.get(i);
        return a;
    }

    // ------------------------------------------------------------------ metrics

    private void publish() {
        runningCount = running.size();
        waitingCount = waiting.size();
        Set<String> ra = new LinkedHashSet<>(), wa = new LinkedHashSet<>();
        for (Seq s : running) if (s.adapter != null) ra.add(s.adapter.name);
        for (Seq s : waiting) if (s.adapter != null) wa.add(s.adapter.name);
        runningAdapters = List.copyOf(ra);
        waitingAdapters = List.copyOf(wa);
        kvUsage = blocks.used() / (double) blocks.numBlocks();
        prefixQueries = blocks.prefixQueries();
        prefixHits = blocks.prefixHits();
    }

    public EngineStats stats() {
        Map<String, Long> fin = new TreeMap<>();
        finished.forEach((k, v) -> fin.put(k, v.get()));
        Map<String, EngineStats.AdapterCounters> pa = new TreeMap<>();
        perAdapter.forEach((k, v) -> pa.put(k, new EngineStats.AdapterCounters(v[0], v[1], v[2])));
        int resident = 0;
        for (AdapterEntry e : adapters.values()) if (e.runnerId >= 0) resident++;
        int nb = blocks.numBlocks();
        return new EngineStats(runningCount, waitingCount, kvUsage, nb, promptTokens.get(), generationTokens.get(),
                Collections.unmodifiableMap(fin), preemptions.get(), prefixQueries, prefixHits, steps.get(),
                Collections.unmodifiableMap(pa), runningAdapters, waitingAdapters, config.maxLoras(), resident,
                runner.commStats().snapshot());
    }
}
