package dev.bdserve.engine;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.parallel.TpGroupException;
import dev.bdserve.structured.TokenVocabulary;
import dev.bdserve.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The serving engine: one step loop that runs a model runner (one rank or a TP group) over a stream of requests
 * arriving and finishing at any time (iteration-level continuous batching, as in Orca / vLLM). Its parts, each with
 * one job: {@link Admission} decides whether a request is taken, the {@link Scheduler} decides each step's work,
 * {@link AdapterResidency} keeps adapters registered and resident, {@link StepPlan} turns work into the runner's batch,
 * each request's {@link OutputProcessor} turns its logits into tokens and text, {@link EngineCounters} keeps the totals
 * and {@link StatsPublisher} reports them. This class queues requests, runs the loop and reports to the listeners.
 *
 * <p>Failures stay with what caused them: an adapter that cannot run on the group is refused at registration; a
 * failure in one request's sampling or output ends that request alone (500); a failure in a step's shared work (the
 * forward pass, scheduling) ends that step's requests (500) and the loop steps on. Only a lost TP rank stops the
 * engine: then every request gets a 503.
 *
 * <p>The model's vocabulary may be larger than the tokenizer's (real checkpoints pad it); ids past the tokenizer's,
 * and the tokenizer's unused ones, are masked before sampling. A smaller one is refused.
 *
 * <p>Thread-safety: {@link #submit}, {@link RequestHandle#cancel}, adapter registration and {@link #stats} may be
 * called from any thread; listeners are called on the step thread.
 */
public final class Engine implements AutoCloseable {
    /**
     * Prompt-logprob rows of one step at most, in floats of logits (rows × vocab): 16 MiB of fp32, which bounds the
     * logits buffers every rank grows to (Llama 3's vocabulary of 128,256: 32 prompt positions per step).
     */
    static final long PROMPT_LOGPROB_FLOATS_PER_STEP = 1L << 22;

    private final ModelRunner runner;
    private final Tokenizer tokenizer;
    private final EngineConfig config;
    private final LlamaConfig model;
    private final Admission admission;
    private final AdapterResidency adapters;
    private final Scheduler scheduler;                          // step thread
    private final EngineCounters counters = new EngineCounters();
    private final StatsPublisher publisher;
    private final Thread loop;
    private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();
    private final AtomicInteger queued = new AtomicInteger();   // submitted, not yet finished
    private final Set<Sequence> live = ConcurrentHashMap.newKeySet();   // submitted, not yet reported to their listener
    private volatile boolean accepting = true;
    private volatile boolean stopping;
    private volatile Throwable broken;

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
        this.config = config;
        this.model = runner.config();
        this.admission = new Admission(tokenizer, model, config, queued);
        int promptRows = (int) Math.min(Integer.MAX_VALUE, Math.max(1, promptLogprobFloatsPerStep / model.vocabSize()));
        this.scheduler = new Scheduler(config, new BlockManager(runner.kvBlocks(), runner.kvBlockSize()), promptRows, counters);
        this.adapters = new AdapterResidency(runner, adapterLoader, model, config, this::onLoop, this::failAdapter);
        this.publisher = new StatsPublisher(scheduler, counters, config, adapters, runner);
        this.loop = Thread.ofPlatform().name("bdserve-engine").unstarted(this::run);
        this.loop.start();
    }

    public LlamaConfig modelConfig() { return model; }
    public Tokenizer tokenizer() { return tokenizer; }
    public EngineConfig config() { return config; }
    public ModelRunner runner() { return runner; }

    /** False once the model group failed (e.g. a lost TP rank); then every request gets a 503. */
    public boolean healthy() { return broken == null && loop.isAlive(); }

    /** Runs an action on the step thread, before its next step. */
    private void onLoop(Runnable op) {
        inbox.add(op);
        LockSupport.unpark(loop);
    }

    // ------------------------------------------------------------------ requests

    /** Queues a request. Throws {@link EngineException} (400, 404, 429, 503) when it cannot be accepted. */
    public RequestHandle submit(EngineRequest r, RequestListener listener) {
        if (broken != null) throw new EngineException(503, "The engine is unavailable: " + broken.getMessage());
        if (!accepting) throw new EngineException(503, "The server is shutting down.");
        Admission.Admitted a = admission.admit(r, adapters, scheduler.blocks());
        Sequence s = new Sequence(r, listener, a.adapter(), a.maxTokens(), a.output(), () -> LockSupport.unpark(loop));
        if (a.adapter() != null) a.adapter().active.incrementAndGet();
        queued.incrementAndGet();
        live.add(s);
        onLoop(() -> scheduler.enqueue(s));
        if (broken != null) fail(broken);              // failed meanwhile from outside: this one gets its 503 too
        return s;
    }

    /**
     * The tokenizer's vocabulary as token bytes, for structured-output masks: built once, on the first constrained
     * request (it takes seconds on a large vocabulary, so not at start), on that request's thread.
     */
    public TokenVocabulary vocabulary() { return admission.vocabulary(); }

    // ------------------------------------------------------------------ adapters

    /**
     * Registers an adapter by name: reads and validates it now (on the calling thread), checks that the group can run
     * it, and makes it resident on every rank before its first request runs. Throws {@link EngineException} 400 with
     * the reason for a bad adapter, one the group cannot run, or a name already in use.
     */
    public AdapterInfo registerAdapter(String name, Path dir, boolean pinned) { return adapters.register(name, dir, pinned); }

    /**
     * Unregisters an adapter: new requests for it get 404 at once; its running and waiting requests may
     * finish for up to {@code wait}, then those left are cancelled; then every rank drops it.
     */
    public void unregisterAdapter(String name, Duration wait) {
        AdapterResidency.Entry e = adapters.markRemoved(name);
        long deadline = System.nanoTime() + wait.toNanos();
        while (e.active.get() > 0 && System.nanoTime() < deadline && healthy()) {
            try { Thread.sleep(5); } catch (InterruptedException ie) { Thread.currentThread().interrupt(); break; }
        }
        onLoop(() -> {
            for (Sequence s : scheduler.running()) if (s.adapter == e) s.cancelled = true;
            for (Sequence s : scheduler.waiting()) if (s.adapter == e) s.cancelled = true;
            reapCancelled();
            adapters.drop(e);
        });
    }

    public List<AdapterInfo> adapters() { return adapters.list(); }

    /** Fails the requests waiting for an adapter that could not be loaded: 400 for a bad adapter, 500 for anything else. */
    private void failAdapter(AdapterResidency.Entry a, Throwable e) {
        EngineException ex = new EngineException(AdapterResidency.status(e), "Failed to load LoRA adapter '" + a.name + "': " + describe(e), e);
        for (Sequence s : new ArrayList<>(scheduler.waiting())) if (s.adapter == a) end(s, null, ex);
    }

    // ------------------------------------------------------------------ lifecycle

    /**
     * Declares the model group lost, from any thread: a watchdog saw a collective of the group hang, so the step
     * thread may never return. {@link #healthy} turns false, new requests get 503, and every request submitted and not
     * yet answered gets a 503 now, from the calling thread. Whatever the step thread does later for them is not
     * reported again.
     */
    public void fail(Throwable cause) {
        if (broken == null) broken = cause;
        accepting = false;
        EngineException ex = new EngineException(503, "The model group failed: " + describe(cause), cause);
        for (Sequence s : live) {
            live.remove(s);
            if (s.reported.compareAndSet(false, true)) {
                try {
                    s.listener.onError(ex);
                } catch (RuntimeException ignored) {
                    // the listener's problem
                }
            }
        }
        LockSupport.unpark(loop);
    }

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
        adapters.close();
    }

    // ------------------------------------------------------------------ the step loop

    private void run() {
        try {
            while (true) {
                Runnable op;
                while ((op = inbox.poll()) != null) runOp(op);
                if (stopping) break;
                reapCancelled();
                if (scheduler.idle()) {
                    publisher.publish();
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
        for (Sequence s : new ArrayList<>(scheduler.running())) end(s, b == null ? "abort" : null, b);
        for (Sequence s : new ArrayList<>(scheduler.waiting())) end(s, b == null ? "abort" : null, b);
        publisher.publish();
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
        for (Sequence s : new ArrayList<>(scheduler.running())) if (s.cancelled) end(s, "abort", null);
        for (Sequence s : new ArrayList<>(scheduler.waiting())) if (s.cancelled) end(s, "abort", null);
    }

    /**
     * Schedules and runs one step; false if nothing could be scheduled. A failure of the step's shared work ends the
     * requests it had scheduled or was considering (500); a lost rank propagates and stops the engine.
     */
    private boolean step() {
        List<Sequence> touched = new ArrayList<>();
        try {
            List<Scheduler.Work> work = scheduler.schedule((a, inStep) -> adapters.ensureResident(a, inStep, scheduler::inUse), touched);
            if (work.isEmpty()) { publisher.publish(); return false; }
            runStep(work);
        } catch (TpGroupException e) {
            throw e;
        } catch (RuntimeException | Error e) {
            EngineException ex = new EngineException(500, "Internal error in a model step: " + describe(e), e);
            for (Sequence s : touched) end(s, null, ex);
        }
        publisher.publish();
        return true;
    }

    private void runStep(List<Scheduler.Work> work) {
        StepPlan plan = StepPlan.of(work);
        int vocab = model.vocabSize();
        float[] logits = new float[plan.rows().size() * vocab];                       // [rows, vocab]
        runner.forward(plan.batch(), logits);                                           // a failure here is the step's
        counters.steps.increment();
        for (Scheduler.Work w : work) {
            Sequence s = w.seq();
            int newPrompt = Math.max(0, Math.min(w.from() + w.n(), s.promptLength()) - w.from());
            if (newPrompt > 0 && s.preempted == 0) counters.promptTokens.add(newPrompt);
            scheduler.advance(w);
        }
        // From here on each row belongs to one request: a failure in it ends that request alone.
        for (int r = 0; r < plan.rows().size(); r++) {
            StepPlan.Row u = plan.rows().get(r);
            if (u.samples() || u.seq().done) continue;
            try {
                u.seq().promptScoring.record(u.target(), logits, r * vocab, vocab);
            } catch (RuntimeException e) {
                failRequest(u.seq(), "computing its prompt logprobs", e);
            }
        }
        for (Scheduler.Work w : work) {
            Sequence s = w.seq();
            if (s.promptScoring == null || s.done) continue;
            PromptLogprobs lp = s.promptScoring.takeIfComplete(s.computed);
            if (lp == null) continue;
            try {
                s.listener.onPromptLogprobs(lp);
            } catch (RuntimeException e) {
                s.cancelled = true;                            // a listener that throws has lost its client
            }
        }
        long now = System.nanoTime();
        for (int r = 0; r < plan.rows().size(); r++) {
            StepPlan.Row u = plan.rows().get(r);
            if (!u.samples() || u.seq().done) continue;
            try {
                accept(u.seq(), logits, r * vocab, vocab, now);
            } catch (RuntimeException e) {
                failRequest(u.seq(), "sampling its next token", e);
            }
        }
        for (Sequence s : plan.promptOnly()) end(s, "length", null);
    }

    /** Ends one request with a 500 naming what failed, at which token; the others in its step go on. */
    private void failRequest(Sequence s, String stage, RuntimeException e) {
        end(s, null, new EngineException(500, "Request " + s.req.id() + " failed while " + stage + " (after " + s.output.generatedCount()
                + " generated tokens): " + describe(e), e));
    }

    /** Samples the next token of s, gives it to the listener, and ends s where a stop rule says so. */
    private void accept(Sequence s, float[] logits, int off, int vocab, long now) {
        OutputProcessor.Step step = s.output.next(logits, off, vocab);
        s.tokenAt(now);
        if (step.token() >= 0) {
            s.tokens.add(step.token());
            counters.generated(s.adapterName());
            try {
                if (!s.reported.get()) s.listener.onToken(new TokenEvent(step.token(), step.text(), step.logprob(), step.top()));
            } catch (RuntimeException e) {
                s.cancelled = true;                            // a listener that throws has lost its client
            }
        }
        if (step.finish() != null) end(s, step.finish(), null);
    }

    /** Finishes (reason != null) or fails a sequence, frees its blocks and reports it once. */
    private void end(Sequence s, String reason, Throwable error) {
        if (s.done) return;
        s.done = true;
        scheduler.remove(s);
        queued.decrementAndGet();
        if (s.adapter != null) s.adapter.active.decrementAndGet();
        counters.finished(reason != null ? reason : "error", s.adapterName(), s.promptLength());
        RequestMetrics m = s.metrics(System.nanoTime());
        live.remove(s);
        if (!s.reported.compareAndSet(false, true)) return;   // already answered by fail()
        try {
            if (reason != null) {
                String rest = reason.equals("abort") ? "" : s.output.takeRest();      // text held back until now
                if (!rest.isEmpty()) s.listener.onToken(new TokenEvent(-1, rest, Float.NaN, List.of()));
                s.listener.onFinish(new RequestResult(s.req.id(), s.output.text(), s.output.tokens(), reason, m));
            } else {
                EngineException ex = error instanceof EngineException ee ? ee
                        : new EngineException(503, "The model group failed: " + (error == null ? "unknown error" : error.getMessage()), error);
                s.listener.onError(ex);
            }
        } catch (RuntimeException ignored) {
            // the listener's problem; the engine goes on
        }
    }

    // ------------------------------------------------------------------ metrics

    /** The queues, the KV pool and the totals, as the step thread last published them. */
    public EngineStats stats() { return publisher.stats(); }
}
