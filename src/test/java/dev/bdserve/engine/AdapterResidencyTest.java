package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraStats;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** Adapter residency without a model: registration, LRU eviction, pinning, reloading after eviction, failures. */
class AdapterResidencyTest {
    static final LlamaConfig C = EngineTest.C;
    @TempDir Path dir;

    /** A group that only records which adapters are laid out; it refuses adapters named "refused*". */
    static final class RecordingRunner implements ModelRunner {
        final List<String> resident = new ArrayList<>();
        final java.util.Map<Integer, String> ids = new java.util.HashMap<>();
        int next;
        public LlamaConfig config() { return C; }
        public int tpSize() { return 1; }
        public void forward(StepBatch b, float[] logits) { throw new UnsupportedOperationException(); }
        public int kvBlocks() { return 1; }
        public int kvBlockSize() { return 16; }
        public void checkAdapter(LoraAdapter a) {
            if (a.name().startsWith("refused")) throw new IllegalArgumentException("adapter " + a.name() + " cannot run here");
        }
        public int addAdapter(LoraAdapter a) {
            checkAdapter(a);
            resident.add(a.name());
            ids.put(next, a.name());
            return next++;
        }
        public void removeAdapter(int id) { resident.remove(ids.remove(id)); }
        public CommStats commStats() { throw new UnsupportedOperationException(); }
        public LoraStats loraStats() { throw new UnsupportedOperationException(); }
        public void collectGarbage() {}
        public long adapterBytesHeld(int id) { return 0; }
        public void close() {}
    }

    final RecordingRunner runner = new RecordingRunner();
    final ConcurrentLinkedQueue<Runnable> loop = new ConcurrentLinkedQueue<>();
    final List<String> failures = new ArrayList<>();

    AdapterResidency residency(int maxCpuLoras, AdapterLoader loader) {
        EngineConfig ec = new EngineConfig(8, 64, Math.min(4, maxCpuLoras), maxCpuLoras, 64, 1L << 20, 16, 100, true);
        return new AdapterResidency(runner, loader, C, ec, loop::add, (e, t) -> failures.add(e.name + ": " + Engine.describe(t)));
    }

    Path write(String name, long seed) {
        Path p = dir.resolve(name);
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 8, false, 0.3, seed).write(p, C, "test");
        return p;
    }

    /** Runs what was posted to the step thread, waiting up to 30 s for an off-loop load to post. */
    void drain(int expected) throws InterruptedException {
        long until = System.nanoTime() + 30_000_000_000L;
        int ran = 0;
        while (ran < expected && System.nanoTime() < until) {
            Runnable r = loop.poll();
            if (r == null) { Thread.sleep(1); continue; }
            r.run();
            ran++;
        }
        assertEquals(expected, ran, "actions posted to the step thread");
    }

    @Test
    void registrationValidatesAndRefusesDuplicatesAndWhatTheGroupCannotRun() {
        try (AdapterResidency r = residency(2, AdapterLoader.PEFT)) {
            AdapterInfo info = r.register("a", write("a", 1), false);
            assertEquals("a", info.name());
            assertFalse(info.resident());
            assertEquals(400, assertThrows(EngineException.class, () -> r.register("a", write("a2", 2), false)).status());
            EngineException e = assertThrows(EngineException.class, () -> r.register("refused", write("refused", 3), false));
            assertEquals("Failed to load LoRA adapter 'refused': adapter refused cannot run here", e.getMessage());
            assertNull(r.lookup("refused"));
            r.markRemoved("a");
            assertNull(r.lookup("a"));
            assertEquals(404, assertThrows(EngineException.class, () -> r.markRemoved("a")).status());
        }
    }

    /** max_cpu_loras 2: the least recently used idle, unpinned adapter outside the step makes room; it is read again when needed. */
    @Test
    void evictionTakesTheLeastRecentlyUsedIdleUnpinnedAdapter() throws Exception {
        AtomicInteger loads = new AtomicInteger();
        AdapterLoader counting = (n, p, m, rank) -> { loads.incrementAndGet(); return PeftAdapterLoader.load(n, p, m, rank); };
        try (AdapterResidency r = residency(2, counting)) {
            for (String n : List.of("a", "b", "c")) r.register(n, write(n, n.charAt(0)), n.equals("b"));
            var a = r.lookup("a");
            var b = r.lookup("b");
            var c = r.lookup("c");
            assertTrue(r.ensureResident(a, Set.of(), e -> false));
            assertTrue(r.ensureResident(b, Set.of(), e -> false));
            assertFalse(r.ensureResident(c, Set.of(a), e -> false), "a is in the step, b is pinned: no room");
            assertFalse(r.ensureResident(c, Set.of(), e -> e == a), "a has running requests");
            assertTrue(r.ensureResident(c, Set.of(), e -> false));
            assertEquals(List.of("b", "c"), runner.resident);
            assertNull(a.adapter, "the evicted adapter's memory is freed");
            assertEquals(3, loads.get());
            assertFalse(r.ensureResident(a, Set.of(), e -> false), "read again off the loop first");
            assertTrue(a.loading);
            drain(1);
            assertEquals(4, loads.get());
            assertTrue(r.ensureResident(a, Set.of(), e -> false));
            assertEquals(List.of("b", "a"), runner.resident, "c was the least recently used");
            assertEquals(2, r.residentCount());
            r.drop(r.markRemoved("a"));
            assertEquals(List.of("b"), runner.resident);
            assertEquals(List.of("b", "c"), r.list().stream().map(AdapterInfo::name).toList());
        }
    }

    /** A reload that throws an Error reports it once and leaves the adapter loadable again. */
    @Test
    void aFailedReloadIsReportedAndTheAdapterIsNotLeftLoading() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        AdapterLoader flaky = (n, p, m, rank) -> {
            if (n.equals("a") && calls.incrementAndGet() == 2) throw new OutOfMemoryError("stub");
            return PeftAdapterLoader.load(n, p, m, rank);
        };
        try (AdapterResidency r = residency(1, flaky)) {
            r.register("a", write("a", 1), false);
            r.register("b", write("b", 2), false);
            var a = r.lookup("a");
            assertTrue(r.ensureResident(a, Set.of(), e -> false));
            assertTrue(r.ensureResident(r.lookup("b"), Set.of(), e -> false));   // evicts a
            assertFalse(r.ensureResident(a, Set.of(), e -> false));
            drain(1);
            assertEquals(List.of("a: java.lang.OutOfMemoryError: stub"), failures);
            assertFalse(a.loading);
            assertEquals(500, AdapterResidency.status(new OutOfMemoryError()));
            assertFalse(r.ensureResident(a, Set.of(), e -> false));
            drain(1);
            assertTrue(r.ensureResident(a, Set.of(), e -> false), "loaded on the next try");
        }
    }

    /** An evicted adapter whose files changed on disk is not read back as something else: its requests fail with 400. */
    @Test
    void aReloadOfChangedFilesIsRefused() throws Exception {
        try (AdapterResidency r = residency(1, AdapterLoader.PEFT)) {
            Path pa = write("a", 1);
            r.register("a", pa, false);
            r.register("b", write("b", 2), false);
            var a = r.lookup("a");
            assertTrue(r.ensureResident(a, Set.of(), e -> false));
            assertTrue(r.ensureResident(r.lookup("b"), Set.of(), e -> false));   // evicts a
            new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 8, false, 0.3, 99).write(pa, C, "test");   // other weights
            assertFalse(r.ensureResident(a, Set.of(), e -> false));
            drain(1);
            assertEquals(1, failures.size());
            assertTrue(failures.getFirst().startsWith("a: ") && failures.getFirst().contains("changed since the adapter was loaded"), failures.toString());
            assertEquals(400, AdapterResidency.status(new dev.bdserve.model.ModelFormatException("x")));
            assertNull(a.adapter);
        }
    }
}
