package dev.bdserve.jmh;

import dev.bdserve.model.KvCache;
import dev.bdserve.model.LlamaModel;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.model.Step;
import dev.bdserve.model.SynthModel;
import dev.bdserve.parallel.SingleRank;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Parallel;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.concurrent.TimeUnit;

/**
 * One decode step of the "tiny" synthetic model (2 layers, dim 64, 4 heads, 2 KV heads; bf16) at context
 * {@code ctx}: with weights this small the step is dominated by attention over the KV cache. The cache is
 * filled to ctx − 1 in setup and truncated back before each step.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class AttentionBench {
    @Param({"16", "128", "255"}) int ctx;

    LlamaModel model;
    LlamaModel.Workspace ws;
    KvCache cache;
    float[] logits;

    @Setup
    public void setup() {
        SynthModel src = new SynthModel(ModelShapes.get("tiny"), DType.BF16, 3);
        model = LlamaModel.load(src, new SingleRank(), Parallel.serial());
        ws = model.newWorkspace();
        cache = model.newCache(ctx);
        int[] prompt = new int[ctx - 1];
        for (int i = 0; i < prompt.length; i++) prompt[i] = 3 + i % 200;
        logits = new float[src.config().vocabSize()];
        if (prompt.length > 0) model.forward(Step.ofSequence(cache, prompt, 0, false), ws, logits);
    }

    @Benchmark
    public void decodeStep(Blackhole bh) {
        cache.truncate(ctx - 1);
        model.forward(Step.ofSequence(cache, new int[] {7}, ctx - 1, false), ws, logits);
        bh.consume(logits);
    }
}
