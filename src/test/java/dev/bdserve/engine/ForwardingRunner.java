package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.parallel.CommStats;

/** A {@link ModelRunner} that hands every call to another; tests override the calls they change. */
public class ForwardingRunner implements ModelRunner {
    protected final ModelRunner inner;

    public ForwardingRunner(ModelRunner inner) { this.inner = inner; }

    /**
     * A runner whose every step lasts at least {@code millis}: a request of n tokens then runs for at least n·millis
     * on any host, so a test can act on it while it runs without racing a fast machine.
     */
    public static ModelRunner paced(ModelRunner inner, long millis) {
        return new ForwardingRunner(inner) {
            @Override public void forward(StepBatch b, float[] logits) {
                long until = System.nanoTime() + millis * 1_000_000;
                super.forward(b, logits);
                long left = until - System.nanoTime();
                if (left > 0) {
                    try {
                        Thread.sleep(left / 1_000_000, (int) (left % 1_000_000));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        };
    }

    @Override public LlamaConfig config() { return inner.config(); }
    @Override public int tpSize() { return inner.tpSize(); }
    @Override public void forward(StepBatch b, float[] logits) { inner.forward(b, logits); }
    @Override public int kvBlocks() { return inner.kvBlocks(); }
    @Override public int kvBlockSize() { return inner.kvBlockSize(); }
    @Override public void checkAdapter(LoraAdapter a) { inner.checkAdapter(a); }
    @Override public int addAdapter(LoraAdapter a) { return inner.addAdapter(a); }
    @Override public void removeAdapter(int id) { inner.removeAdapter(id); }
    @Override public CommStats commStats() { return inner.commStats(); }
    @Override public LoraStats loraStats() { return inner.loraStats(); }
    @Override public void collectGarbage() { inner.collectGarbage(); }
    @Override public long adapterBytesHeld(int id) { return inner.adapterBytesHeld(id); }
    @Override public void close() { inner.close(); }
}
