package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.lora.RankAdapters;
import dev.bdserve.model.KvCache;
import dev.bdserve.model.KvPool;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.Step;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.Communicator;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One rank of a tensor-parallel group: its model shard, scratch, KV block pool and adapters, and the messages rank 0
 * sends every rank (a step to run, an adapter to add or remove). Rank 0 runs them on the caller's thread; every other
 * rank loops in {@link #serve} receiving them, so all ranks issue the same collectives in the same order.
 */
final class TpRank {
    static final int OP_FORWARD = 1, OP_ADD_ADAPTER = 4, OP_REMOVE_ADAPTER = 5, OP_SHUTDOWN = 6, OP_COLLECT_GARBAGE = 7;

    /** How a rank finds the adapter object named by an add-adapter message (id, name, path). */
    @FunctionalInterface
    interface AdapterResolver { LoraAdapter resolve(int id, String name, String path); }

    /**
     * Every rank refused an adapter together, because some rank could not get the bytes rank 0 validated (its files are
     * missing or differ there): the group stays consistent and goes on; only that adapter's requests fail.
     */
    static final class AdapterRefused extends IllegalArgumentException {
        AdapterRefused(String message) { super(message); }
    }

    final LlamaModel model;
    final LlamaModel.Workspace ws;
    final Communicator comm;
    final KvPool pool;
    final RankAdapters lora;                                              // this rank's adapter layouts
    private final AdapterResolver resolver;
    private final Map<Integer, LoraAdapter> adapters = new HashMap<>();   // this rank's adapters by group id
    private float[] scratchLogits = new float[0];

    TpRank(LlamaModel model, Communicator comm, AdapterResolver resolver, KvPool pool) {
        this.model = model;
        this.ws = model.newWorkspace();
        this.comm = comm;
        this.resolver = resolver;
        this.pool = pool;
        this.lora = new RankAdapters(model.config(), model.weights().shard(), model.parallel(), comm);
    }

    LoraStats loraStats() { return lora.stats(); }

    /** The adapter registered under a group id, or null. */
    LoraAdapter adapter(int id) { return adapters.get(id); }

    /** The add-adapter message: id, the sharding rank 0 resolved for it, name, path, and the content hash rank 0 validated. */
    static int[] addAdapterMessage(int id, LoraSharding sharding, String name, String path, String contentHash) {
        int[] m = new int[5 + name.length() + path.length() + contentHash.length()];
        m[0] = id;
        m[1] = sharding.ordinal();
        int k = 2;
        for (String s : List.of(name, path, contentHash)) {
            m[k++] = s.length();
            for (int i = 0; i < s.length(); i++) m[k++] = s.charAt(i);
        }
        return m;
    }

    private static String readString(int[] m, int[] pos) {
        int n = m[pos[0]++];
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) sb.append((char) m[pos[0]++]);
        return sb.toString();
    }

    /** Runs a control message. */
    void execute(int op, int[] m) {
        switch (op) {
            case OP_FORWARD -> forward(StepBatch.decode(m), null);
            case OP_ADD_ADAPTER -> {
                int[] pos = {2};
                String name = readString(m, pos), path = readString(m, pos), hash = readString(m, pos);
                LoraAdapter a = null;
                String refusal = null;
                try {
                    a = resolver.resolve(m[0], name, path);
                    String got = a.contentHash() == null ? "" : a.contentHash();
                    if (!got.equals(hash))
                        refusal = "its files at " + path + " differ on rank " + comm.rank() + " from what rank 0 validated (content hash "
                                + got.substring(0, Math.min(12, got.length())) + " instead of " + hash.substring(0, Math.min(12, hash.length())) + ")";
                } catch (RuntimeException e) {
                    refusal = "rank " + comm.rank() + " could not read it: " + e.getMessage();
                }
                // Every rank learns whether every rank has the same adapter, so all add it or none does.
                float[] flag = {refusal == null ? 0 : 1};
                comm.allReduceSum(flag, 0, 1, Collective.CONTROL);
                if (flag[0] != 0) {
                    if (refusal != null && comm.rank() != 0) System.err.println("bdserve: rank " + comm.rank() + ": adapter " + name + " refused: " + refusal);
                    throw new AdapterRefused("adapter " + name + " was refused: " + (refusal != null ? refusal
                            : "another rank could not read the same files (missing there, or changed since rank 0 read them)"));
                }
                lora.add(a, LoraSharding.values()[m[1]]);
                adapters.put(m[0], a);
            }
            case OP_REMOVE_ADAPTER -> { LoraAdapter a = adapters.remove(m[0]); if (a != null) lora.remove(a); }
            case OP_COLLECT_GARBAGE -> System.gc();
            default -> throw new IllegalStateException("unknown control op " + op);
        }
    }

    /** Runs one step of this rank's shard; writes the logits rows into {@code logits} (rank 0) or scratch (null). */
    void forward(StepBatch b, float[] logits) {
        int T = b.size(), vocab = model.config().vocabSize();
        KvCache[] views = new KvCache[b.blockTables().length];
        for (int i = 0; i < views.length; i++) views[i] = KvCache.view(pool, b.blockTables()[i], model.config().maxPositions());
        KvCache[] cs = new KvCache[T];
        LoraAdapter[] ad = null;
        for (int t = 0; t < T; t++) {
            cs[t] = views[b.seqIndex()[t]];
            int aid = b.adapterIds()[t];
            if (aid >= 0) {
                if (ad == null) ad = new LoraAdapter[T];
                ad[t] = adapters.get(aid);
                if (ad[t] == null) throw new IllegalStateException("adapter id " + aid + " is not registered on rank " + comm.rank());
            }
        }
        float[] out = logits;
        if (out == null) {
            int need = b.logitRows().length * vocab;
            if (scratchLogits.length < need) scratchLogits = new float[need];
            out = scratchLogits;
        }
        model.forward(new Step(b.tokens(), b.positions(), cs, b.logitRows(), lora.forStep(ad)), ws, out);
    }

    /** The loop of a rank other than 0: receive a message from rank 0, run it, until shutdown. */
    void serve() {
        int[] header = new int[2];
        while (true) {
            comm.broadcast(header, 0, 2, 0, Collective.CONTROL);
            int op = header[0], len = header[1];
            if (op == OP_SHUTDOWN) return;
            int[] payload = new int[len];
            if (len > 0) comm.broadcast(payload, 0, len, 0, Collective.CONTROL);
            try {
                execute(op, payload);
            } catch (AdapterRefused e) {
                // refused by every rank together (its reason is on stderr): the group goes on
            }
        }
    }
}
