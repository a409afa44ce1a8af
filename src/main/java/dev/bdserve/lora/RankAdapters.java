package dev.bdserve.lora;

import dev.bdserve.model.AdapterUpdates;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.ProjectionGroup;
import dev.bdserve.model.Shard;
import dev.bdserve.parallel.Communicator;
import dev.bdserve.tensor.Parallel;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The adapters of one tensor-parallel rank: each laid out once for the rank's shard under the strategy rank 0
 * resolved for it, and turned into a step's {@link AdapterUpdates} for the model's forward pass. Driven by one
 * thread (the rank's), whose {@link LoraWorkspace} it owns.
 */
public final class RankAdapters {
    private final LlamaConfig config;
    private final Shard shard;
    private final Parallel par;
    private final Communicator comm;
    private final LoraWorkspace ws = new LoraWorkspace();
    private final Map<LoraAdapter, PreparedAdapter> prepared = new ConcurrentHashMap<>();

    public RankAdapters(LlamaConfig config, Shard shard, Parallel par, Communicator comm) {
        this.config = config;
        this.shard = shard;
        this.par = par;
        this.comm = comm;
    }

    /** The adapters of the rank a model shard runs as. */
    public static RankAdapters of(LlamaModel m) {
        return new RankAdapters(m.config(), m.weights().shard(), m.parallel(), m.communicator());
    }

    /**
     * The updates of a step whose token t uses {@code perToken[t]}, each adapter added first under the strategy
     * {@code requested} resolves to at this TP degree (replicated as the fall-back): for single-rank callers and tests.
     */
    public AdapterUpdates forStep(LoraAdapter[] perToken, LoraSharding requested) {
        for (LoraAdapter a : perToken)
            if (a != null) add(a, requested.resolve(a, config, shard.size(), LoraSharding.REPLICATED));
        return forStep(perToken);
    }

    /** Lays an adapter out for this rank under its resolved strategy (once; later calls return the same layout). */
    public PreparedAdapter add(LoraAdapter a, LoraSharding resolved) {
        return prepared.computeIfAbsent(a, k -> PreparedAdapter.prepare(k, config, shard, resolved));
    }

    /** The layout of an added adapter. */
    public PreparedAdapter get(LoraAdapter a) {
        PreparedAdapter p = prepared.get(a);
        if (p == null) throw new IllegalArgumentException("adapter " + a.name() + " was not added on rank " + shard.rank());
        return p;
    }

    /** Drops this rank's layout of an adapter (after it is unloaded). */
    public void remove(LoraAdapter a) { prepared.remove(a); }

    /** LoRA bytes, FLOPs and time of the steps run here. */
    public LoraStats stats() { return ws.stats(); }

    /** The updates of a step whose token t uses {@code perToken[t]} (null: the base model); NONE when no token has one. */
    public AdapterUpdates forStep(LoraAdapter[] perToken) {
        if (perToken == null) return AdapterUpdates.NONE;
        PreparedAdapter[] per = new PreparedAdapter[perToken.length];
        LoraAdapter last = null;
        PreparedAdapter lastP = null;
        for (int t = 0; t < per.length; t++) {
            LoraAdapter a = perToken[t];
            if (a == null) continue;
            if (a != last) { last = a; lastP = get(a); }
            per[t] = lastP;
        }
        LoraBatch batch = LoraBatch.of(per);
        if (batch.isEmpty()) return AdapterUpdates.NONE;
        ws.stats.step();
        return new StepUpdates(batch);
    }

    /** The grouped LoRA kernels on one step's segments. */
    private final class StepUpdates implements AdapterUpdates {
        private final LoraBatch batch;

        StepUpdates(LoraBatch batch) { this.batch = batch; }

        @Override public void addTo(int layer, ProjectionGroup g, float[] x, int xWidth, float[] y, int yWidth) {
            LoraCompute.apply(layer, g, batch, x, xWidth, y, yWidth, par, comm, ws);
        }
    }
}
