package dev.bdserve.parallel.mpi;

import dev.bdserve.engine.TpScript;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.LlamaWeights;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.Shard;
import dev.bdserve.model.TensorSource;
import dev.bdserve.model.SynthModel;
import dev.bdserve.parallel.CommStats;
import dev.bdserve.tensor.DType;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;

/**
 * Run by mpirun (one process per rank): for each adapter sharding, a TP group over the mpi transport runs a
 * prefill of mixed sequences and decode steps, and rank 0 compares every step's logits with the same script on a
 * TP-1 group in its own process (max |Δ| ≤ 1e-4 × max |logit|), and checks the collective counts. Adapters were
 * written by the launching test into the folder given as the first argument: d6 (dense rank 6), b16 (BD rank 16,
 * nblocks 4), b8 (BD rank 8, nblocks 8).
 */
public final class MpiTpCheck {
    /** 8 heads and KV heads, FFN 128: splits 2, 4 and 8 ways. */
    static final LlamaConfig C = new LlamaConfig(250, 64, 128, 3, 8, 8, 8, 256, 1e-5f, 10000, null, false, 1, List.of(2), "float32");

    public static void main(String[] args) throws Exception {
        Path adapters = Path.of(args[0]);
        try (MpiCommunicator comm = MpiCommunicator.init()) {
            int n = comm.size();
            record Scenario(String name, LoraSharding sharding, String[] adapters, int[] perSeq) {}
            List<Scenario> scenarios = List.of(
                    new Scenario("base", LoraSharding.AUTO, new String[0], new int[]{-1, -1, -1}),
                    new Scenario("replicated", LoraSharding.REPLICATED, new String[]{"d6", "b16"}, new int[]{0, 1, -1, 0}),
                    new Scenario("slora", LoraSharding.SLORA, new String[]{"d6", "b16"}, new int[]{0, 1, -1, 0}),
                    new Scenario("bdlora", LoraSharding.BDLORA, new String[]{"b16", "b8"}, new int[]{0, 1, 0, -1}),
                    new Scenario("auto-mixed", LoraSharding.AUTO, new String[]{"b16", "d6", "b8"}, new int[]{0, 1, -1, 2, 1}));
            int failures = 0;
            for (Scenario s : scenarios) {
                TpGroup.Options o = new TpGroup.Options(n, 1, s.sharding(), LoraSharding.SLORA, 0).withKvCache(16L << 20, 16);
                TpGroup g = TpGroup.forProcess(comm, () -> new SynthModel(C, DType.F32, 21), o, 64);
                if (g == null) continue;                             // a worker rank: rank 0 ran the scenario and closed it
                List<float[]> got;
                CommStats decode;
                try (g) {
                    for (String a : s.adapters()) g.addAdapter(PeftAdapterLoader.load(a, adapters.resolve(a), C, 64));
                    got = TpScript.run(g, s.perSeq());
                    decode = TpScript.lastDecode;
                }
                List<float[]> ref;
                try (TpGroup one = TpGroup.threads(() -> new SynthModel(C, DType.F32, 21), TpGroup.Options.single(1))) {
                    for (String a : s.adapters()) one.addAdapter(PeftAdapterLoader.load(a, adapters.resolve(a), C, 64));
                    ref = TpScript.run(one, s.perSeq());
                }
                String why = TpScript.compare(ref, got);
                long extra = decode.modelCalls() - (2L * C.numLayers() + 1);
                long expectExtra = s.name().equals("slora") ? 4L * C.numLayers() : s.name().equals("auto-mixed") ? 4L * C.numLayers() : 0;
                if (extra != expectExtra) why = (why == null ? "" : why + "; ") + "decode step had " + extra + " extra collectives, expected " + expectExtra;
                System.out.println("scenario " + s.name() + " ranks=" + n + ": " + (why == null ? "ok" : "FAILED " + why));
                if (why != null) failures++;
            }
            failures += quantizedBase(comm, adapters);
            failures += otherFamilies(comm, adapters);
            failures += nativeKernels(comm, adapters);
            if (comm.rank() == 0) System.out.println(failures == 0 ? "MPI TP CHECK PASS ranks=" + n : "MPI TP CHECK FAIL ranks=" + n);
            comm.barrier();
        }
    }

    /**
     * A Q4_0 GGUF base (weights kept quantized, file {@value #Q4_0} in the adapters folder) under each sharding: at 2
     * ranks every shard holds whole blocks and the logits match TP 1 on the same file (scenario "q4_0" under BD-LoRA
     * with b16 and b8, "q4_0-replicated" and "q4_0-slora" with d6 and b16); at 4 ranks o_proj's 16-column shards would
     * cut its blocks of 32, and every rank refuses the file naming the tensor before loading ("q4_0"). Returns failures.
     */
    static int quantizedBase(MpiCommunicator comm, Path adapters) throws Exception {
        int n = comm.size();
        Path file = adapters.resolve(Q4_0);
        if (C.numHeads() / n * C.headDim() % 32 != 0) {                // o_proj shards of less than a block
            String why;
            try (TensorSource src = ModelFiles.open(file)) {
                LlamaWeights.load(src, new Shard(comm.rank(), n));
                why = "loaded shards that cut Q4_0 blocks";
            } catch (ModelFormatException e) {
                why = e.getMessage().contains("'blk.0.attn_output.weight' (Q4_0") ? null : "refused with: " + e.getMessage();
            }
            if (comm.rank() == 0) System.out.println("scenario q4_0 ranks=" + n + ": " + (why == null ? "ok" : "FAILED " + why));
            return why == null ? 0 : 1;
        }
        int failures = 0;
        for (LoraSharding sharding : List.of(LoraSharding.BDLORA, LoraSharding.REPLICATED, LoraSharding.SLORA)) {
            TpGroup.Options o = new TpGroup.Options(n, 1, sharding, LoraSharding.SLORA, 0).withKvCache(16L << 20, 16);
            Compared r = vsSingleRank(comm, () -> ModelFiles.open(file), C, adapters, adaptersFor(sharding), o, false);
            if (r == null) continue;                                 // a worker rank: rank 0 ran the scenario and closed it
            String name = scenario("q4_0", sharding);
            System.out.println("scenario " + name + " ranks=" + n + ": " + (r.failure() == null ? "ok" : "FAILED " + r.failure()));
            if (r.failure() != null) failures++;
        }
        return failures;
    }

    /**
     * The decoder variants of other families on C's shapes (Qwen2's q/k/v biases, Qwen3's q/k norms, Mistral's sliding
     * window of 4, shorter than the script's sequences, Gemma 2's and Gemma 3's windowed and global layers, Phi-3's
     * fused projections, its dense adapter on them split per part) under each sharding: BD-LoRA with b16 and b8
     * (scenario named by the family; Phi-3's BD adapters on o and down), replicated and S-LoRA with d6 and b16
     * ("family-replicated", "family-slora"). Logits equal TP 1 in this process. Returns failures.
     */
    static int otherFamilies(MpiCommunicator comm, Path adapters) throws Exception {
        int failures = 0;
        for (DecoderVariant v : List.of(DecoderVariant.qwen2(0), DecoderVariant.qwen3(0), DecoderVariant.mistral(4),
                DecoderVariant.gemma2(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 4, 5, 3, 0),
                DecoderVariant.gemma3(DecoderVariant.Norm.ONE_PLUS_WEIGHT, 4, 2, 10000, 0), DecoderVariant.phi3(4))) {
            LlamaConfig c = C.withVariant(v);
            Path dir = v.fusedQkv() ? adapters.resolve("phi3") : adapters;
            for (LoraSharding sharding : List.of(LoraSharding.BDLORA, LoraSharding.REPLICATED, LoraSharding.SLORA)) {
                TpGroup.Options o = new TpGroup.Options(comm.size(), 1, sharding, LoraSharding.SLORA, 0).withKvCache(16L << 20, 16);
                Compared r = vsSingleRank(comm, () -> new SynthModel(c, DType.F32, 23), c, dir, adaptersFor(sharding), o, false);
                if (r == null) continue;                             // a worker rank: rank 0 ran the scenario and closed it
                String why = r.failure();
                String name = scenario(v.family(), sharding);
                System.out.println("scenario " + name + " ranks=" + comm.size() + ": " + (why == null ? "ok" : "FAILED " + why));
                if (why != null) failures++;
            }
        }
        return failures;
    }

    /**
     * The native kernels over the mpi transport under BD-LoRA against TP 1 on the Java kernels: a bf16 base, and (where
     * the shards hold whole Q8_0 blocks) a Q8_0 base from bf16 copies. Logits within 2 % of each step's largest (bf16
     * activations), and not all equal (the native products ran). Returns failures.
     */
    static int nativeKernels(MpiCommunicator comm, Path adapters) throws Exception {
        int failures = 0;
        if (dev.bdserve.tensor.dnnl.Dnnl.load() instanceof dev.bdserve.tensor.dnnl.Dnnl.Unavailable u) {
            if (comm.rank() == 0) System.out.println("scenario native-bf16 ranks=" + comm.size() + ": not run: " + u.reason());
            return 0;
        }
        record Case(String name, Supplier<TensorSource> source, dev.bdserve.tensor.dnnl.NativeKernels.Copies copies) {}
        List<Case> cases = new java.util.ArrayList<>(List.of(new Case("native-bf16", () -> new SynthModel(C, DType.BF16, 25),
                dev.bdserve.tensor.dnnl.NativeKernels.Copies.NONE)));
        if (C.numHeads() / comm.size() * C.headDim() % 32 == 0)
            cases.add(new Case("native-q8_0-copies", () -> dev.bdserve.model.gguf.QuantizingSource.of(new SynthModel(C, DType.F32, 25),
                    dev.bdserve.model.gguf.GgufRecipe.parse("q8_0")), dev.bdserve.tensor.dnnl.NativeKernels.Copies.BF16));
        for (Case k : cases) {
            TpGroup.Options o = new TpGroup.Options(comm.size(), 1, LoraSharding.BDLORA, LoraSharding.SLORA, 0).withKvCache(16L << 20, 16)
                    .withKernels(dev.bdserve.tensor.dnnl.NativeKernels.Choice.NATIVE).withNativeCopies(k.copies());
            Compared r = vsSingleRank(comm, k.source(), C, adapters, adaptersFor(LoraSharding.BDLORA), o, true);
            if (r == null) continue;
            System.out.println("scenario " + k.name() + " ranks=" + comm.size() + ": " + (r.failure() == null ? "ok" : "FAILED " + r.failure()));
            if (r.failure() != null) failures++;
        }
        return failures;
    }

    /** The adapters a sharding scenario serves: BD-LoRA's b16 and b8, else the dense d6 beside b16. */
    static String[] adaptersFor(LoraSharding sharding) {
        return sharding == LoraSharding.BDLORA ? new String[]{"b16", "b8"} : new String[]{"d6", "b16"};
    }

    /** A scenario's name: {@code base} under BD-LoRA, else {@code base-replicated} or {@code base-slora}. */
    static String scenario(String base, LoraSharding sharding) {
        return sharding == LoraSharding.BDLORA ? base : base + "-" + sharding.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Rank 0's comparison: null when the logits match, else what differs. */
    record Compared(String failure) {}

    /**
     * The model of {@code source} over this process group under options {@code o} with adapters {@code names} (from
     * folder {@code adapters}), against TP 1 in this process (the script's mixed batch, logits compared). Null on a
     * worker rank, which serves rank 0 until it closes. {@code bf16Tolerance}: logits within 2 % of each step's largest
     * and not all equal (the native kernels' bf16 activations), else within 1e-4.
     */
    static Compared vsSingleRank(MpiCommunicator comm, Supplier<TensorSource> source, LlamaConfig c, Path adapters, String[] names,
                                 TpGroup.Options o, boolean bf16Tolerance) throws Exception {
        TpGroup g = TpGroup.forProcess(comm, source, o, 64);
        if (g == null) return null;
        int[] perSeq = {0, 1, 0, -1};
        List<float[]> got, ref;
        try (g) {
            for (String a : names) g.addAdapter(PeftAdapterLoader.load(a, adapters.resolve(a), c, 64));
            got = TpScript.run(g, perSeq);
        }
        try (TpGroup one = TpGroup.threads(source, TpGroup.Options.single(1))) {
            for (String a : names) one.addAdapter(PeftAdapterLoader.load(a, adapters.resolve(a), c, 64));
            ref = TpScript.run(one, perSeq);
        }
        return new Compared(bf16Tolerance ? TpScript.compareBf16(ref, got) : TpScript.compare(ref, got));
    }

    /** The Q4_0 GGUF of {@code SynthModel(C, F32, 21)} that the launching test writes next to the adapters. */
    static final String Q4_0 = "m-q4_0.gguf";
}
