package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.Shard;
import dev.bdserve.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Grouping a step's tokens by adapter, and which segments can read the step's inputs in place. */
class LoraBatchTest {
    static final LlamaConfig C = new LlamaConfig(64, 32, 64, 1, 4, 4, 8, 64, 1e-5f, 10000, null, false, 1, List.of(2), "float32");

    @TempDir Path dir;

    PreparedAdapter prepared(String name) {
        Path p = dir.resolve(name);
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 4, false, 0.3, name.hashCode()).write(p, C, "test");
        return PreparedAdapter.prepare(PeftAdapterLoader.load(name, p, C, 64), C, Shard.single(), LoraSharding.REPLICATED);
    }

    @Test
    void segmentsKeepTokenOrderAndKnowWhenTheyLead() {
        PreparedAdapter a = prepared("a"), b = prepared("b");
        LoraBatch one = LoraBatch.of(new PreparedAdapter[] {a, a, a});
        assertEquals(1, one.segments().size());
        assertArrayEquals(new int[] {0, 1, 2}, one.segments().get(0).tokens());
        assertTrue(one.segments().get(0).leading());

        LoraBatch mixed = LoraBatch.of(new PreparedAdapter[] {a, b, null, a});
        assertEquals(2, mixed.segments().size());
        assertSame(a, mixed.segments().get(0).adapter());
        assertArrayEquals(new int[] {0, 3}, mixed.segments().get(0).tokens());
        assertFalse(mixed.segments().get(0).leading());
        assertArrayEquals(new int[] {1}, mixed.segments().get(1).tokens());
        assertFalse(mixed.segments().get(1).leading());

        LoraBatch first = LoraBatch.of(new PreparedAdapter[] {b, b, null});
        assertTrue(first.segments().get(0).leading());
        assertEquals(2, first.maxSegmentTokens());
        assertTrue(LoraBatch.of(new PreparedAdapter[] {null, null}).isEmpty());
    }
}
