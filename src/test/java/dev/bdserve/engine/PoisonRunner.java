package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Poisons, after the forward pass, the logits rows of requests on adapters named {@code poison-KIND}, from
 * position 6 on (mid-stream): {@code nan}, {@code inf} (+Inf), {@code dead} (every logit −Inf), {@code pad} (the
 * largest logit at an id past the tokenizer's vocabulary or at its unused id); {@code throw} makes the whole forward pass throw.
 */
public final class PoisonRunner extends ForwardingRunner {
    final Map<Integer, String> kinds = new ConcurrentHashMap<>();   // runner adapter id → poison kind
    final AtomicInteger addFailures = new AtomicInteger();          // the next addAdapter calls that throw

    public PoisonRunner(ModelRunner inner) { super(inner); }

    @Override public int addAdapter(LoraAdapter a) {
        if (addFailures.getAndUpdate(n -> Math.max(0, n - 1)) > 0) throw new IllegalArgumentException("refused by the test runner");
        int id = super.addAdapter(a);
        if (a.name().startsWith("poison-")) kinds.put(id, a.name().substring(7));
        return id;
    }

    @Override public void forward(StepBatch b, float[] logits) {
        for (int r = 0; r < b.logitRows().length; r++) {
            int t = b.logitRows()[r];
            if ("throw".equals(kinds.get(b.adapterIds()[t]))) throw new IllegalStateException("the test runner's forward pass broke");
        }
        super.forward(b, logits);
        int vocab = config().vocabSize();
        for (int r = 0; r < b.logitRows().length; r++) {
            int t = b.logitRows()[r];
            String kind = kinds.get(b.adapterIds()[t]);
            if (kind == null || b.positions()[t] < 6) continue;
            int off = r * vocab;
            switch (kind) {
                case "nan" -> logits[off + 17] = Float.NaN;
                case "inf" -> logits[off + 5] = Float.POSITIVE_INFINITY;
                case "dead" -> java.util.Arrays.fill(logits, off, off + vocab, Float.NEGATIVE_INFINITY);
                case "pad" -> logits[off + (b.positions()[t] % 2 == 0 ? EngineFaultTest.UNUSED : vocab - 1 - (b.positions()[t] % 20))] = 1e30f;
                default -> { }
            }
        }
    }
}
