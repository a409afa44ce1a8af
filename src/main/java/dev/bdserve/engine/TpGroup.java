package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.model.KvDtype;
import dev.bdserve.model.KvPool;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.LlamaWeights;
import dev.bdserve.model.Shard;
import dev.bdserve.model.TensorSource;
import dev.bdserve.parallel.Collective;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.parallel.Communicator;
import dev.bdserve.parallel.SimulatedLatency;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.parallel.ThreadsTransport;
import dev.bdserve.parallel.TpGroupException;
import dev.bdserve.tensor.Parallel;
import dev.bdserve.tensor.SpinPool;
import dev.bdserve.tensor.dnnl.DnnlContext;
import dev.bdserve.tensor.dnnl.NativeKernels;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * A tensor-parallel group driven by rank 0 (spec §1; TP 1 is the same code with one rank). Rank 0 is
 * the caller's thread: for every step it broadcasts the step's description, then runs its own shard;
 * every other rank loops receiving descriptions and running its shard, so all ranks issue the same
 * collectives in the same order. Each rank owns its weight slices, KV caches and adapter shards.
 */
public final class TpGroup implements ModelRunner {
    private final TpRank root;
    private final LlamaConfig config;
    private final List<Thread> workers;
    private final ThreadsTransport transport;           // null unless the threads transport
    private final Map<Integer, LoraAdapter> shared;     // adapters handed to rank 0's resolver (and the others' over threads)
    private final LoraSharding sharding, fallback;
    private final List<AutoCloseable> resources;
    private final String kernels;
    private int nextAdapterId;
    private boolean closed;

    private TpGroup(TpRank root, List<Thread> workers, ThreadsTransport transport, Map<Integer, LoraAdapter> shared,
                    LoraSharding sharding, LoraSharding fallback, List<AutoCloseable> resources, String kernels) {
        this.kernels = kernels;
        this.root = root;
        this.config = root.model.config();
        this.workers = workers;
        this.transport = transport;
        this.shared = shared;
        this.sharding = sharding;
        this.fallback = fallback;
        this.resources = resources;
    }

    /**
     * Settings of a group.
     *
     * @param kvCacheBytes KV pool budget of each rank
     * @param kvBlockSize  positions per KV block
     * @param kernels      the matrix products' kernels (Java unless asked otherwise)
     * @param nativeCopies what quantized weights' native products read (their blocks unless asked otherwise)
     */
    public record Options(int tp, int threadsPerRank, LoraSharding sharding, LoraSharding fallback, double simulatedLatencyMicros,
                          long kvCacheBytes, int kvBlockSize, KvDtype kvDtype, NativeKernels.Choice kernels,
                          NativeKernels.Copies nativeCopies) {
        public Options {
            java.util.Objects.requireNonNull(kvDtype, "kvDtype");
            java.util.Objects.requireNonNull(kernels, "kernels");
            java.util.Objects.requireNonNull(nativeCopies, "nativeCopies");
            if (kvCacheBytes < 1 || kvBlockSize < 1) throw new IllegalArgumentException("the KV cache needs a positive budget and block size");
            if (tp < 1) throw new IllegalArgumentException("--tp must be ≥ 1");
            if (threadsPerRank < 1) throw new IllegalArgumentException("threads per rank must be ≥ 1");
            if (fallback == LoraSharding.AUTO || fallback == LoraSharding.BDLORA)
                throw new IllegalArgumentException("the LoRA fall-back sharding must be replicated or slora");
        }

        /** Default KV budget of tools and tests: 256 MiB per rank, blocks of 16. */
        public static final long DEFAULT_KV_BYTES = 256L << 20;

        public Options(int tp, int threadsPerRank, LoraSharding sharding, LoraSharding fallback, double simulatedLatencyMicros) {
            this(tp, threadsPerRank, sharding, fallback, simulatedLatencyMicros, DEFAULT_KV_BYTES, 16, KvDtype.F32, NativeKernels.Choice.JAVA,
                    NativeKernels.Copies.NONE);
        }

        public static Options single(int threads) { return new Options(1, threads, LoraSharding.AUTO, LoraSharding.REPLICATED, 0); }

        public Options withKvCache(long bytes, int blockSize) {
            return new Options(tp, threadsPerRank, sharding, fallback, simulatedLatencyMicros, bytes, blockSize, kvDtype, kernels, nativeCopies);
        }

        /** These options with the KV cache stored as {@code dtype}. */
        public Options withKvDtype(KvDtype dtype) {
            return new Options(tp, threadsPerRank, sharding, fallback, simulatedLatencyMicros, kvCacheBytes, kvBlockSize, dtype, kernels, nativeCopies);
        }

        /** These options with the matrix products on {@code choice}'s kernels. */
        public Options withKernels(NativeKernels.Choice choice) {
            return new Options(tp, threadsPerRank, sharding, fallback, simulatedLatencyMicros, kvCacheBytes, kvBlockSize, kvDtype, choice, nativeCopies);
        }

        /** These options with quantized weights' native products reading {@code copies}. */
        public Options withNativeCopies(NativeKernels.Copies copies) {
            return new Options(tp, threadsPerRank, sharding, fallback, simulatedLatencyMicros, kvCacheBytes, kvBlockSize, kvDtype, kernels, copies);
        }
    }

    private static Parallel pool(int threads) { return threads == 1 ? Parallel.serial() : new SpinPool(threads); }

    /**
     * A group of {@code o.tp()} ranks in this JVM over the threads transport ({@code o.tp() == 1}: one rank,
     * no transport). {@code sources} opens the checkpoint (once per rank; each rank copies only its slices).
     */
    public static TpGroup threads(Supplier<TensorSource> sources, Options o) {
        int n = o.tp();
        NativeKernels kernels = NativeKernels.resolve(o.kernels(), o.nativeCopies());
        List<AutoCloseable> resources = new ArrayList<>();
        Map<Integer, LoraAdapter> shared = new ConcurrentHashMap<>();
        TpRank.AdapterResolver fromMemory = (id, name, path) -> {
            LoraAdapter a = shared.get(id);
            if (a == null) throw new IllegalStateException("adapter " + id + " was not handed over");
            return a;
        };
        if (n == 1) {
            Parallel par = pool(o.threadsPerRank());
            resources.add(par);
            DnnlContext ctx = context(kernels, o, resources);
            Communicator c = o.simulatedLatencyMicros() > 0 ? new SimulatedLatency(new SingleRank(), o.simulatedLatencyMicros()) : new SingleRank();
            LlamaModel m = loadReleasing(sources, c, par, o, kernels, ctx, resources);
            TpRank r = new TpRank(m, c, fromMemory, pool(m, o));
            return new TpGroup(r, List.of(), null, shared, o.sharding(), o.fallback(), resources, kernels.description());
        }
        ThreadsTransport transport = new ThreadsTransport(n);
        TpRank[] ranks = new TpRank[n];
        Throwable[] loadFailure = new Throwable[n];
        Thread[] loaders = new Thread[n];
        for (int i = 0; i < n; i++) {
            final int ri = i;
            Parallel par = pool(o.threadsPerRank());
            resources.add(par);
            DnnlContext ctx = context(kernels, o, resources);
            loaders[i] = Thread.ofPlatform().name("bdserve-load-rank-" + i).start(() -> {
                try {
                    Communicator c = transport.rank(ri);
                    if (o.simulatedLatencyMicros() > 0) c = new SimulatedLatency(c, o.simulatedLatencyMicros());
                    LlamaModel m = loadRank(sources, c, par, o, kernels, ctx);
                    ranks[ri] = new TpRank(m, c, fromMemory, pool(m, o));
                } catch (Throwable t) {
                    loadFailure[ri] = t;
                }
            });
        }
        for (Thread t : loaders) {
            try { t.join(); } catch (InterruptedException e) { Thread.currentThread().interrupt(); throw new IllegalStateException(e); }
        }
        for (Throwable t : loadFailure) if (t != null) {
            transport.close();
            for (AutoCloseable r : resources) closeQuietly(r);
            if (t instanceof RuntimeException re) throw re;
            throw new IllegalStateException(t);
        }
        List<Thread> workers = new ArrayList<>();
        for (int i = 1; i < n; i++) {
            TpRank r = ranks[i];
            Thread t = Thread.ofPlatform().daemon().name("bdserve-rank-" + i).start(() -> {
                try {
                    r.serve();
                } catch (Throwable e) {
                    transport.fail(new TpGroupException("rank " + r.comm.rank() + " failed: " + e, e));
                }
            });
            workers.add(t);
        }
        return new TpGroup(ranks[0], workers, transport, shared, o.sharding(), o.fallback(), resources, kernels.description());
    }

    /**
     * One process's part of a group whose ranks are separate processes (the mpi transport): on rank 0
     * returns the group to drive; on every other rank serves rank 0's messages until shutdown and
     * returns null. Adapters are read from their paths by every rank, which checks that it read the content rank 0
     * validated (its SHA-256); if any rank did not, every rank refuses the adapter.
     */
    public static TpGroup forProcess(Communicator comm, Supplier<TensorSource> sources, Options o, int maxLoraRank) {
        if (o.tp() != comm.size())
            throw new IllegalArgumentException("--tp " + o.tp() + " does not match the " + comm.size() + " processes started by mpirun");
        NativeKernels kernels = NativeKernels.resolve(o.kernels(), o.nativeCopies());
        Parallel par = pool(o.threadsPerRank());
        List<AutoCloseable> resources = new ArrayList<>(List.of(par));
        DnnlContext ctx = context(kernels, o, resources);
        Communicator c = o.simulatedLatencyMicros() > 0 ? new SimulatedLatency(comm, o.simulatedLatencyMicros()) : comm;
        LlamaModel m = loadReleasing(sources, c, par, o, kernels, ctx, resources);
        Map<Integer, LoraAdapter> shared = new ConcurrentHashMap<>();
        TpRank.AdapterResolver resolver = comm.rank() == 0
                ? (id, name, path) -> shared.get(id)
                : (id, name, path) -> dev.bdserve.lora.PeftAdapterLoader.load(name, java.nio.file.Path.of(path), m.config(), maxLoraRank);
        TpRank r = new TpRank(m, c, resolver, pool(m, o));
        if (comm.rank() != 0) {
            try {
                r.serve();
            } finally {
                for (AutoCloseable res : resources) closeQuietly(res);
            }
            return null;
        }
        return new TpGroup(r, List.of(), null, shared, o.sharding(), o.fallback(), resources, kernels.description());
    }

    /** The rank's KV pool: as many blocks as the budget holds (the same count on every rank). */
    static KvPool pool(LlamaModel m, Options o) {
        long blocks = o.kvCacheBytes() / m.kvBlockBytes(o.kvBlockSize(), o.kvDtype());
        if (blocks < 1)
            throw new IllegalArgumentException("the KV cache budget of " + o.kvCacheBytes() + " bytes holds no block of " + m.kvBlockBytes(o.kvBlockSize(), o.kvDtype()) + " bytes");
        return m.newPool(o.kvBlockSize(), (int) Math.min(blocks, Integer.MAX_VALUE / 2), o.kvDtype());
    }

    /** A rank's oneDNN context (added to {@code resources}) when the kernels are native, else null. */
    private static DnnlContext context(NativeKernels kernels, Options o, List<AutoCloseable> resources) {
        if (!kernels.isNative()) return null;
        DnnlContext ctx = kernels.context(o.threadsPerRank());
        resources.add(ctx);
        return ctx;
    }

    /** Loads a rank's shard; with a oneDNN context its products run natively where that pays ({@link NativeKernels#wrap}). */
    private static LlamaModel loadRank(Supplier<TensorSource> sources, Communicator c, Parallel par, Options o,
                                       NativeKernels kernels, DnnlContext ctx) {
        try (TensorSource src = sources.get()) {
            LlamaWeights w = LlamaWeights.load(src, new Shard(c.rank(), c.size()));
            if (ctx != null) w = w.withProducts(x -> kernels.wrap(x, ctx));
            return new LlamaModel(src.config(), w, c, par);
        }
    }

    /** {@link #loadRank} for a process's only rank: if loading fails, {@code resources} (its pool, its context) are closed. */
    private static LlamaModel loadReleasing(Supplier<TensorSource> sources, Communicator c, Parallel par, Options o,
                                            NativeKernels kernels, DnnlContext ctx, List<AutoCloseable> resources) {
        try {
            return loadRank(sources, c, par, o, kernels, ctx);
        } catch (RuntimeException | Error e) {
            for (AutoCloseable r : resources) closeQuietly(r);
            throw e;
        }
    }

    /** The kernels the matrix products run on: "java", "native (oneDNN …)" or why auto kept Java. */
    public String kernels() { return kernels; }

    /**
     * Simulates the loss of rank {@code rank} (threads transport): the group is marked broken as if that rank's
     * thread had died, so every pending and later step fails with a {@link TpGroupException} naming it. For fault
     * drills and tests of the fail-stop path.
     */
    public void failRank(int rank, String why) {
        if (transport == null) throw new IllegalStateException("fault injection needs the threads transport with TP > 1");
        transport.fail(new TpGroupException("rank " + rank + " failed: " + why));
    }

    @Override public LlamaConfig config() { return config; }
    @Override public int tpSize() { return root.comm.size(); }
    @Override public CommStats commStats() { return root.comm.stats(); }
    @Override public LoraStats loraStats() { return root.loraStats(); }

    @Override
    public void collectGarbage() {
        if (transport != null) System.gc();              // threads: every rank lives in this JVM
        else run(TpRank.OP_COLLECT_GARBAGE, new int[0]);  // one rank, or one process per rank (mpi)
    }

    /** Rank 0's model shard (for inspection). */
    public LlamaModel rootModel() { return root.model; }

    private void send(int op, int[] payload) {
        if (closed) throw new IllegalStateException("the model group is closed");
        if (tpSize() == 1) return;
        root.comm.broadcast(new int[]{op, payload.length}, 0, 2, 0, Collective.CONTROL);
        if (payload.length > 0) root.comm.broadcast(payload, 0, payload.length, 0, Collective.CONTROL);
    }

    /** Runs a control message on every rank: sends it, then runs it on rank 0. */
    private void run(int op, int[] payload) {
        send(op, payload);
        onRoot(() -> root.execute(op, payload));
    }

    /** Runs rank 0's part of a message the others received; a failure after they started breaks the group. */
    private void onRoot(Runnable part) {
        try {
            part.run();
        } catch (TpRank.AdapterRefused e) {
            throw e;                                     // every rank refused it together: the group is consistent
        } catch (RuntimeException e) {
            if (transport != null) transport.fail(e);
            throw e;
        }
    }

    /** Rank 0 runs the batch as given; the other ranks get it encoded. */
    @Override
    public void forward(StepBatch b, float[] logits) {
        validate(b);
        if (tpSize() > 1) send(TpRank.OP_FORWARD, b.encode());
        onRoot(() -> root.forward(b, logits));
    }

    /** Everything a rank could reject is checked on rank 0 first, so no rank fails alone mid-step. */
    private void validate(StepBatch b) {
        int vocab = config.vocabSize();
        for (int t = 0; t < b.size(); t++) {
            if (b.tokens()[t] < 0 || b.tokens()[t] >= vocab) throw new IllegalArgumentException("token id " + b.tokens()[t] + " outside the vocabulary of " + vocab);
            if (b.positions()[t] < 0 || b.positions()[t] >= config.maxPositions())
                throw new IllegalArgumentException("position " + b.positions()[t] + " exceeds the context limit of " + config.maxPositions());
            int a = b.adapterIds()[t];
            if (a >= 0 && root.adapter(a) == null) throw new IllegalArgumentException("adapter id " + a + " is not registered");
        }
        for (int r : b.logitRows()) if (r < 0 || r >= b.size()) throw new IllegalArgumentException("logit row " + r + " outside the step");
        int bs = kvBlockSize(), nb = kvBlocks();
        for (int[] table : b.blockTables()) for (int blk : table) if (blk < 0 || blk >= nb) throw new IllegalArgumentException("KV block " + blk + " outside the pool of " + nb);
        for (int t = 0; t < b.size(); t++)
            if (b.positions()[t] / bs >= b.blockTables()[b.seqIndex()[t]].length)
                throw new IllegalArgumentException("position " + b.positions()[t] + " has no KV block in its sequence's table");
    }

    @Override public int kvBlocks() { return root.pool.numBlocks(); }

    @Override public int kvBlockSize() { return root.pool.blockSize(); }

    @Override
    public void checkAdapter(LoraAdapter a) { sharding.resolve(a, config, tpSize(), fallback); }

    @Override
    public int addAdapter(LoraAdapter a) { return addAdapter(a, sharding); }

    /** Registers an adapter under a sharding of its own (e.g. to compare strategies in one run). */
    public int addAdapter(LoraAdapter a, LoraSharding requested) {
        // Resolve (and so refuse) on rank 0 before any rank sees it: every rank would decide the same.
        LoraSharding resolved = requested.resolve(a, config, tpSize(), fallback);
        int id = nextAdapterId++;
        shared.put(id, a);
        try {
            run(TpRank.OP_ADD_ADAPTER, TpRank.addAdapterMessage(id, resolved, a.name(), a.source() == null ? "" : a.source().toString(),
                    a.contentHash() == null ? "" : a.contentHash()));
        } catch (RuntimeException e) {
            shared.remove(id);
            throw e;
        }
        return id;
    }

    @Override
    public void removeAdapter(int id) {
        if (root.adapter(id) == null) throw new IllegalArgumentException("adapter id " + id + " is not registered");
        run(TpRank.OP_REMOVE_ADAPTER, new int[]{id});
        shared.remove(id);
    }

    @Override
    public long adapterBytesHeld(int id) {
        LoraAdapter a = root.adapter(id);
        if (a == null) throw new IllegalArgumentException("adapter id " + id + " is not registered");
        return root.lora.get(a).bytesHeld();
    }

    /** The sharding an adapter runs under. */
    public LoraSharding adapterSharding(int id) { return root.lora.get(root.adapter(id)).sharding(); }

    @Override
    public void close() {
        if (closed) return;
        try {
            if (tpSize() > 1 && (transport == null || transport.failure() == null)) send(TpRank.OP_SHUTDOWN, new int[0]);
        } catch (RuntimeException ignored) {
            // the group is already broken; fall through to releasing resources
        }
        closed = true;
        for (Thread t : workers) {
            try { t.join(5_000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        }
        if (transport != null) transport.close();
        for (AutoCloseable r : resources) closeQuietly(r);
    }

    private static void closeQuietly(AutoCloseable c) {
        try { c.close(); } catch (Exception ignored) { /* closing */ }
    }
}
