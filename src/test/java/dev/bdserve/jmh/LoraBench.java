package dev.bdserve.jmh;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.lora.RankAdapters;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.AdapterUpdates;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.ProjectionGroup;
import dev.bdserve.model.Shard;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Parallel;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Grouped LoRA (shrink then expand, SGMV-style) of one module group of one layer at llama-160m widths,
 * {@code tokens} tokens spread round-robin over {@code adapters} bf16 adapters, one rank, one thread:
 * dense rank 16 vs BD-LoRA (2 blocks) at the same rank.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class LoraBench {
    @Param({"QKV", "DOWN"}) String group;
    @Param({"0", "2"}) int nblocks;
    @Param({"1", "16"}) int tokens;
    @Param({"1", "8"}) int adapters;

    AdapterUpdates updates;
    ProjectionGroup g;
    float[] x, y;
    int xWidth, yWidth;
    SingleRank comm = new SingleRank();
    Path dir;

    @Setup
    public void setup() throws IOException {
        LlamaConfig c = ModelShapes.get("llama-160m");
        dir = Files.createTempDirectory("bdserve-jmh-lora");
        RankAdapters rank = new RankAdapters(c, new Shard(0, 1), Parallel.serial(), comm);
        LoraAdapter[] loaded = new LoraAdapter[adapters];
        for (int i = 0; i < adapters; i++) {
            Path p = dir.resolve("a" + i);
            new SynthAdapter(16, nblocks, SynthAdapter.allModules(), DType.BF16, 16, false, 0.3, 10 + i).write(p, c, "llama-160m");
            loaded[i] = PeftAdapterLoader.load("a" + i, p, c, 16);
            rank.add(loaded[i], nblocks > 0 ? LoraSharding.BDLORA : LoraSharding.REPLICATED);
        }
        LoraAdapter[] perToken = new LoraAdapter[tokens];
        for (int t = 0; t < tokens; t++) perToken[t] = loaded[t % adapters];
        updates = rank.forStep(perToken);
        g = ProjectionGroup.valueOf(group);
        int qkv = c.qDim() + 2 * c.kvDim();
        xWidth = g == ProjectionGroup.DOWN ? c.intermediateSize() : c.hiddenSize();
        yWidth = g == ProjectionGroup.QKV ? qkv : c.hiddenSize();
        SplittableRandom r = new SplittableRandom(1);
        x = new float[tokens * xWidth];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() - 0.5);
        y = new float[tokens * yWidth];
    }

    @TearDown
    public void tearDown() throws IOException {
        try (var s = Files.walk(dir)) { s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete()); }
    }

    @Benchmark
    public void shrinkExpand(Blackhole bh) {
        updates.addTo(0, g, x, xWidth, y, yWidth);
        bh.consume(y);
    }
}
