package dev.bdserve.server;

import dev.bdserve.engine.EngineException;
import dev.bdserve.engine.EngineRequest;
import dev.bdserve.engine.PromptLogprobs;
import dev.bdserve.engine.RequestHandle;
import dev.bdserve.engine.RequestListener;
import dev.bdserve.engine.RequestResult;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TokenEvent;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The engine requests of one API request (one per prompt × n) and their choices. The engine's listeners only queue
 * events; the request's own thread takes them, so the engine's step thread never waits on a socket.
 */
final class Generation {
    sealed interface Event permits PromptLp, Tok, Done, Fail {}
    record PromptLp(int idx, PromptLogprobs p) implements Event {}
    record Tok(int idx, TokenEvent e) implements Event {}
    record Done(int idx, RequestResult r) implements Event {}
    record Fail(int idx, EngineException e) implements Event {}

    final CompletionRequest job;
    final Choice[] choices;
    final Completions.Outcome out;
    private final Completions.Sink sink;
    private final ServerMetrics metrics;
    private final LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private final List<RequestHandle> handles;

    private Generation(CompletionRequest job, Completions.Sink sink, Completions.Outcome out, ServerMetrics metrics) {
        this.job = job;
        this.sink = sink;
        this.out = out;
        this.metrics = metrics;
        this.choices = new Choice[job.choices()];
        this.handles = new ArrayList<>(choices.length);
    }

    /** Submits one engine request per choice; if the engine refuses one, cancels those already submitted. */
    static Generation submit(ServingEngine engine, CompletionRequest job, Completions.Sink sink, Completions.Outcome out,
                             ServerMetrics metrics) {
        Generation g = new Generation(job, sink, out, metrics);
        int total = g.choices.length;
        if (job.constraint() != null) metrics.constrained(job.adapter(), job.constraint().kind(), total);
        try {
            for (int p = 0; p < job.prompts().size(); p++)
                for (int i = 0; i < job.n(); i++) {
                    int idx = p * job.n() + i;
                    g.choices[idx] = new Choice();
                    if (job.tools() != null) g.choices[idx].tools = job.tools().streamer();
                    SamplingParams sp = job.params().seed() == null || i == 0 ? job.params() : job.params().withSeed(job.params().seed() + i);
                    EngineRequest er = new EngineRequest(total == 1 ? job.id() : job.id() + "-" + idx, job.prompts().get(p).ids(),
                            job.adapter(), sp, job.maxTokens(), job.outputConstraint());
                    g.handles.add(engine.submit(er, new RequestListener() {
                        @Override public void onPromptLogprobs(PromptLogprobs p) { g.events.add(new PromptLp(idx, p)); }
                        @Override public void onToken(TokenEvent e) { g.events.add(new Tok(idx, e)); }
                        @Override public void onFinish(RequestResult r) { g.events.add(new Done(idx, r)); }
                        @Override public void onError(EngineException e) { g.events.add(new Fail(idx, e)); }
                    }));
                }
        } catch (EngineException e) {
            g.cancel();
            throw ApiException.from(e);
        } catch (IllegalArgumentException e) {
            g.cancel();
            throw ApiException.badRequest(e.getMessage());
        }
        return g;
    }

    /** Cancels every engine request (frees their KV blocks); those already finished ignore it. */
    void cancel() { handles.forEach(RequestHandle::cancel); }

    /**
     * The next event; IOException as soon as the client is known to be gone (the caller cancels): checked before
     * every event, since a request producing tokens steadily never leaves the queue empty, and every 100 ms without.
     */
    Event take() throws IOException {
        try {
            while (true) {
                if (sink.clientGone()) throw new IOException("the client went away");
                Event ev = events.poll(100, TimeUnit.MILLISECONDS);
                if (ev != null) return ev;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        }
    }

    /** Records the end of a choice; the result's text is authoritative (held-back text included). */
    void finish(int idx, RequestResult r) {
        Choice c = choices[idx];
        String all = r.text();
        if (all != null && !all.contentEquals(c.text)) { c.text.setLength(0); c.text.append(all); }
        c.finish = r.finishReason();
        c.done = true;
        int produced = r.tokens() != null ? r.tokens().length : c.tokensOut;
        out.completionTokens += produced;
        out.finish = out.finish.isEmpty() ? c.finish : out.finish.contains(c.finish) ? out.finish : out.finish + "," + c.finish;
        if (r.metrics() != null) {
            double t = r.metrics().ttftSeconds();
            if (t > 0 && (Double.isNaN(out.ttftSeconds) || t < out.ttftSeconds)) out.ttftSeconds = t;
            metrics.observe(job.adapter(), r.finishReason(), r.metrics());
        }
    }
}
