package dev.bdserve.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs a few generations through the engine before it serves, so the JIT has compiled what a loaded server runs
 * (prompt chunks, batched decode at every batch size from the stream count down to one, each adapter's LoRA path)
 * before the first client waits on it; llama.cpp's server likewise runs a warm-up decode at start. The streams
 * cycle over the base model and the given adapters; their max_tokens differ so the batch shrinks one sequence at
 * a time. Their prompts are distinct, so prefill really runs; their KV blocks are freed (cached prefixes stay
 * evictable) and they count in the engine's stats like any request.
 */
public final class Warmup {
    private Warmup() {}

    /** What a warm-up did: streams run, tokens generated, wall time, and the first failure (null when none). */
    public record Report(int streams, int tokens, long millis, String failure) {}

    /**
     * Runs {@code streams} concurrent greedy requests of about {@code promptTokens} prompt tokens and 8 to
     * 8 + streams generated tokens each, and waits for them.
     *
     * Prompts and lengths shrink to fit the model's context. A request the engine refuses or fails does not stop the
     * others; the report names the first such failure.
     *
     * @param adapters registered adapter names to spread the streams over (with the base model)
     */
    public static Report run(Engine engine, List<String> adapters, int streams, int promptTokens) throws InterruptedException {
        if (streams < 1) throw new IllegalArgumentException("warm-up streams must be ≥ 1, got " + streams);
        if (promptTokens < 1) throw new IllegalArgumentException("warm-up prompt tokens must be ≥ 1, got " + promptTokens);
        List<String> targets = new ArrayList<>();
        targets.add(null);
        targets.addAll(adapters);
        SamplingParams greedy = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
        CountDownLatch done = new CountDownLatch(streams);
        AtomicReference<String> failure = new AtomicReference<>();
        int[] generated = new int[1];
        long t0 = System.nanoTime();
        int ctx = engine.modelConfig().maxPositions();
        for (int s = 0; s < streams; s++) {
            int[] prompt = engine.tokenizer().encode(prompt(s, promptTokens), true);
            if (prompt.length > ctx / 2) prompt = java.util.Arrays.copyOf(prompt, Math.max(1, ctx / 2));
            int maxTokens = Math.max(1, Math.min(8 + s, ctx - prompt.length - 1));
            EngineRequest r = new EngineRequest("warmup-" + s, prompt, targets.get(s % targets.size()), greedy, maxTokens);
            RequestListener listener = new RequestListener() {
                @Override public void onToken(TokenEvent event) {}
                @Override public void onFinish(RequestResult result) {
                    synchronized (generated) { generated[0] += result.tokens().length; }
                    done.countDown();
                }
                @Override public void onError(EngineException error) {
                    failure.compareAndSet(null, r.id() + ": " + error.getMessage());
                    done.countDown();
                }
            };
            try {
                engine.submit(r, listener);
            } catch (EngineException e) {
                listener.onError(e);
            }
        }
        if (!done.await(10, TimeUnit.MINUTES)) failure.compareAndSet(null, "the warm-up did not finish within 10 minutes");
        synchronized (generated) { return new Report(streams, generated[0], (System.nanoTime() - t0) / 1_000_000, failure.get()); }
    }

    /** A text of roughly n tokens that differs from stream to stream from its first word on. */
    static String prompt(int stream, int n) {
        StringBuilder b = new StringBuilder().append(stream).append(':');
        for (int i = 0; i < n; i++) b.append(' ').append((char) ('a' + (stream * 7 + i * 3) % 26)).append(i % 10);
        return b.toString();
    }
}
