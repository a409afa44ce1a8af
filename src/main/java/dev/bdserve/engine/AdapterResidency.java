package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.parallel.TpGroupException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The adapters known by name and which of them are resident on the model group: register, load, pin, evict. An
 * adapter is read and validated when registered (on the caller's thread) and again, off the step loop, when it is
 * needed after an eviction; it is laid out on every rank (or dropped) on the step thread, in lock-step with the
 * steps. At most max_cpu_loras are resident; idle unpinned ones are evicted least recently used first.
 */
final class AdapterResidency implements AutoCloseable {
    /** An adapter known by name. */
    static final class Entry {
        final String name;
        final Path path;
        final boolean pinned;
        final long bytes;                   // its factors' bytes, counted against the registry's cap
        volatile LoraAdapter adapter;       // parsed and validated; null when evicted from memory
        private volatile String contentHash;
        volatile int runnerId = -1;         // ≥ 0 when resident on every rank
        volatile boolean loading;           // being read off the loop, or a failure being reported: not schedulable
        volatile boolean removed;
        final AtomicInteger active = new AtomicInteger();   // requests using it (running or waiting)
        long lastUsed;                      // step-thread clock of its last use, for LRU eviction

        Entry(String name, Path path, boolean pinned, LoraAdapter adapter) {
            this.name = name;
            this.path = path;
            this.pinned = pinned;
            this.bytes = adapter == null ? 0 : adapter.bytes();
            set(adapter);
        }

        void set(LoraAdapter a) {
            adapter = a;
            if (a != null) contentHash = a.contentHash();
        }

        /** The hash of its weights (kept across evictions): prefix-cache keys never cross adapters. */
        String contentHash() { return contentHash; }
    }

    private final ModelRunner runner;
    private final AdapterLoader loader;
    private final LlamaConfig model;
    private final EngineConfig config;
    private final Consumer<Runnable> toLoop;                  // runs an action on the step thread and wakes it
    private final BiConsumer<Entry, Throwable> onLoadFailure; // step thread: fail the requests waiting for it
    private final ExecutorService reader;                     // adapter files are read here, off the step loop
    private final Map<String, Entry> byName = new ConcurrentHashMap<>();
    private int resident;                                     // step thread
    private long clock;                                       // step thread

    AdapterResidency(ModelRunner runner, AdapterLoader loader, LlamaConfig model, EngineConfig config, Consumer<Runnable> toLoop,
                     BiConsumer<Entry, Throwable> onLoadFailure) {
        this.runner = runner;
        this.loader = loader;
        this.model = model;
        this.config = config;
        this.toLoop = toLoop;
        this.onLoadFailure = onLoadFailure;
        this.reader = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().name("bdserve-adapter-loader").unstarted(r));
    }

    // ------------------------------------------------------------------ any thread

    /**
     * Reads and validates an adapter and checks that the group can run it (so it is refused now, not at its first
     * request). Throws {@link EngineException} 400 for a bad adapter or a name in use.
     */
    AdapterInfo register(String name, Path dir, boolean pinned) {
        if (name == null || name.isBlank()) throw new EngineException(400, "lora_name must not be empty.");
        if (lookup(name) != null) throw new EngineException(400, "The lora adapter '" + name + "' has already been loaded.");
        LoraAdapter la;
        try {
            la = loader.load(name, dir, model, config.maxLoraRank());
            runner.checkAdapter(la);
        } catch (ModelFormatException | IllegalArgumentException e) {
            throw new EngineException(400, "Failed to load LoRA adapter '" + name + "': " + e.getMessage(), e);
        }
        Entry e = new Entry(name, dir, pinned, la);
        synchronized (byName) {             // the caps hold against concurrent registrations
            int count = 0;
            long bytes = 0;
            for (Entry x : byName.values()) if (!x.removed) { count++; bytes += x.bytes; }
            if (count >= config.maxRegisteredLoras())
                throw new EngineException(400, "Cannot load LoRA adapter '" + name + "': " + count + " adapters are loaded, the most the server "
                        + "allows (--max-registered-loras " + config.maxRegisteredLoras() + "); unload one first.");
            if (bytes + e.bytes > config.maxRegisteredLoraBytes())
                throw new EngineException(400, "Cannot load LoRA adapter '" + name + "': its " + e.bytes + " bytes of weights and the "
                        + bytes + " of the loaded adapters exceed the server's cap of " + config.maxRegisteredLoraBytes()
                        + " bytes (--max-registered-lora-mb); unload one first.");
            Entry old = byName.putIfAbsent(name, e);
            if (old != null) {
                if (!old.removed) throw new EngineException(400, "The lora adapter '" + name + "' has already been loaded.");
                byName.put(name, e);        // the old one is being dropped; its drop leaves this one in place
            }
        }
        return info(e);
    }

    /** The adapter of that name, or null if there is none (or it is being removed). */
    Entry lookup(String name) {
        Entry e = byName.get(name);
        return e == null || e.removed ? null : e;
    }

    /** Marks an adapter removed: new requests for it get 404 from now on. Throws 404 if there is none. */
    Entry markRemoved(String name) {
        synchronized (byName) {
            Entry e = lookup(name);
            if (e == null) throw new EngineException(404, "The lora adapter '" + name + "' cannot be found.");
            e.removed = true;
            return e;
        }
    }

    List<AdapterInfo> list() {
        List<AdapterInfo> out = new ArrayList<>();
        for (Entry e : new TreeMap<>(byName).values()) if (!e.removed) out.add(info(e));
        return out;
    }

    int residentCount() {
        int n = 0;
        for (Entry e : byName.values()) if (e.runnerId >= 0) n++;
        return n;
    }

    private static AdapterInfo info(Entry e) {
        LoraAdapter a = e.adapter;
        return new AdapterInfo(e.name, e.path, e.runnerId >= 0, e.pinned, e.active.get(), a == null ? 0 : a.maxRank(),
                a != null && a.isBlockDiagonal(), null);
    }

    // ------------------------------------------------------------------ step thread

    /**
     * True when the adapter is resident; otherwise starts making it so and returns false: reads it again off the loop
     * if it was evicted, or lays it out on every rank (evicting an idle one if max_cpu_loras are resident). A failure
     * to load or lay it out fails the requests waiting for it ({@code onLoadFailure}); a lost rank propagates.
     *
     * @param inStep adapters the step being scheduled uses (never evicted for this one)
     * @param inUse  whether an adapter has running requests (never evicted either)
     */
    boolean ensureResident(Entry a, Set<Entry> inStep, Predicate<Entry> inUse) {
        if (a.removed || a.loading) return false;
        if (a.runnerId >= 0) { a.lastUsed = ++clock; return true; }
        if (a.adapter == null) {                      // evicted earlier: read it again off the loop
            a.loading = true;
            reader.submit(() -> {
                try {
                    LoraAdapter la = loader.load(a.name, a.path, model, config.maxLoraRank());
                    if (!la.contentHash().equals(a.contentHash()))
                        throw new ModelFormatException("the files under " + a.path + " changed since the adapter was loaded (content hash "
                                + la.contentHash().substring(0, 12) + " instead of " + a.contentHash().substring(0, 12) + "); unload and load it again");
                    runner.checkAdapter(la);
                    toLoop.accept(() -> { a.set(la); a.loading = false; });
                } catch (Throwable e) {               // an Error too: the adapter must not stay "loading"
                    toLoop.accept(() -> { a.loading = false; onLoadFailure.accept(a, e); });
                }
            });
            return false;
        }
        if (resident >= config.maxCpuLoras() && !evictOne(inStep, inUse)) return false;
        try {
            a.runnerId = runner.addAdapter(a.adapter);   // every rank lays out its shard, in lock-step
        } catch (TpGroupException e) {
            throw e;
        } catch (RuntimeException e) {                // refused before any rank saw it: its requests fail, the engine goes on
            a.loading = true;                         // not tried again in this step
            toLoop.accept(() -> { a.loading = false; a.adapter = null; onLoadFailure.accept(a, e); });
            return false;
        }
        resident++;
        a.lastUsed = ++clock;
        return true;
    }

    /** Evicts the least recently used resident adapter that is idle and unpinned; false if none is. */
    private boolean evictOne(Set<Entry> inStep, Predicate<Entry> inUse) {
        Entry lru = null;
        for (Entry e : byName.values())
            if (e.runnerId >= 0 && !e.pinned && !inStep.contains(e) && !inUse.test(e) && (lru == null || e.lastUsed < lru.lastUsed)) lru = e;
        if (lru == null) return false;
        runner.removeAdapter(lru.runnerId);
        lru.runnerId = -1;
        lru.adapter = null;                           // free its memory; it is read again when needed
        resident--;
        return true;
    }

    /** Drops a removed adapter from every rank and from the registry. */
    void drop(Entry e) {
        if (e.runnerId >= 0) {
            runner.removeAdapter(e.runnerId);
            e.runnerId = -1;
            resident--;
        }
        e.adapter = null;
        byName.remove(e.name, e);
    }

    /** A load failure's status: 400 for a bad adapter, 500 for anything else (out of memory, say). */
    static int status(Throwable e) {
        return e instanceof ModelFormatException || e instanceof IllegalArgumentException ? 400 : 500;
    }

    @Override
    public void close() { reader.shutdownNow(); }
}
