package dev.bdserve.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.Shard;
import dev.bdserve.model.io.Safetensors;
import dev.bdserve.tensor.Matrix;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What `./bdserve adapter inspect` and `adapter densify` do. */
public final class AdapterTools {
    private AdapterTools() {}

    /** BD-LoRA parameters of one module at rank r with n blocks (spec §2). */
    public static long bdParameters(LoraModule m, LlamaConfig c, int r, int n) {
        return m.columnParallel() ? (long) r * (m.in(c) + m.out(c) / n) : (long) r * (m.in(c) / n + m.out(c));
    }

    /**
     * The parameter-matched BD rank of a dense adapter: the largest multiple of {@code nblocks} whose BD
     * parameter count over the same modules does not exceed the adapter's (spec §2). 0 if none fits.
     */
    public static int parameterMatchedBdRank(LoraAdapter a, LlamaConfig c, int nblocks) {
        long budget = a.parameters();
        long perRank = 0; // BD parameters per unit of rank over the adapted modules
        for (int l = 0; l < c.numLayers(); l++)
            for (LoraModule m : LoraModule.values()) if (a.get(l, m) != null) perRank += bdParameters(m, c, 1, nblocks);
        long r = budget / perRank;
        return (int) (r / nblocks * nblocks);
    }

    /** The TP degrees (1..8) the base model splits over, with the adapter sharding strategies each allows. */
    public static Map<Integer, List<String>> supportedSharding(LoraAdapter a, LlamaConfig c) {
        Map<Integer, List<String>> out = new LinkedHashMap<>();
        for (int n = 1; n <= 8; n++) {
            if (new Shard(0, n).incompatibility(c) != null) continue;
            List<String> s = new ArrayList<>(List.of("replicated", "slora"));
            if (bdLoraReason(a, c, n) == null) s.add("bdlora");
            out.put(n, s);
        }
        return out;
    }

    /** Why the adapter cannot be sharded communication-free at TP n, or null if it can (spec §2 constraints). */
    public static String bdLoraReason(LoraAdapter a, LlamaConfig c, int n) {
        if (!a.isBlockDiagonal()) return "not a BD-LoRA adapter";
        if (a.nblocks() % n != 0) return "nblocks " + a.nblocks() + " is not a multiple of TP " + n;
        if (c.numKvHeads() < n) {
            for (LoraWeights[] l : a.modules())
                if (l[LoraModule.K.ordinal()] != null || l[LoraModule.V.ordinal()] != null)
                    return "the model has " + c.numKvHeads() + " KV heads, fewer than TP " + n + ", so k/v are replicated and their B blocks do not align";
        }
        for (LoraWeights[] l : a.modules())
            for (LoraWeights w : l) if (w != null && w.kind() == LoraKind.DENSE) return "module " + w.module() + " is dense";
        return null;
    }

    /** A human-readable report of an adapter. */
    public static String inspect(LoraAdapter a, LlamaConfig c, int[] matchNblocks) {
        StringBuilder sb = new StringBuilder();
        AdapterConfig cfg = a.config();
        sb.append("adapter: ").append(a.source()).append('\n');
        sb.append("kind: ").append(a.isBlockDiagonal() ? "BD-LoRA, nblocks " + a.nblocks() : "LoRA").append('\n');
        sb.append("base model: ").append(cfg.baseModel()).append('\n');
        sb.append("content hash: ").append(a.contentHash()).append('\n');
        sb.append(String.format("parameters: %,d (%,d bytes as loaded)%n", a.parameters(), a.bytes()));
        sb.append("use_rslora: ").append(cfg.useRslora()).append('\n');
        sb.append("modules (layers: rank, alpha, scaling, kind):\n");
        for (LoraModule m : LoraModule.values()) {
            Map<String, List<Integer>> rows = new LinkedHashMap<>();
            for (int l = 0; l < c.numLayers(); l++) {
                LoraWeights w = a.get(l, m);
                if (w == null) continue;
                String key = String.format("r=%d alpha=%s scaling=%.6g %s", w.rank(), fmt(cfg.alphaFor(m.path(l))), w.scaling(), w.kind());
                rows.computeIfAbsent(key, k -> new ArrayList<>()).add(l);
            }
            rows.forEach((k, layers) -> sb.append("  ").append(String.format("%-10s", m.projName())).append(" layers ")
                    .append(ranges(layers)).append(": ").append(k).append('\n'));
        }
        sb.append("tensor parallelism (degree: sharding strategies):\n");
        supportedSharding(a, c).forEach((n, s) -> {
            sb.append("  TP ").append(n).append(": ").append(String.join(", ", s));
            if (a.isBlockDiagonal() && !s.contains("bdlora")) sb.append("  (bdlora: ").append(bdLoraReason(a, c, n)).append(')');
            sb.append('\n');
        });
        if (!a.isBlockDiagonal())
            for (int nb : matchNblocks) {
                int r = parameterMatchedBdRank(a, c, nb);
                long p = 0;
                for (int l = 0; l < c.numLayers(); l++)
                    for (LoraModule m : LoraModule.values()) if (a.get(l, m) != null) p += bdParameters(m, c, r, nb);
                sb.append(String.format("parameter-matched BD rank at nblocks %d: %d (%,d parameters, %.3fx)%n", nb, r, p, p / (double) a.parameters()));
            }
        return sb.toString();
    }

    private static String fmt(double d) { return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d); }

    private static String ranges(List<Integer> xs) {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (i < xs.size()) {
            int j = i;
            while (j + 1 < xs.size() && xs.get(j + 1) == xs.get(j) + 1) j++;
            if (sb.length() > 0) sb.append(',');
            sb.append(xs.get(i));
            if (j > i) sb.append('-').append(xs.get(j));
            i = j + 1;
        }
        return sb.toString();
    }

    /**
     * Writes the ordinary LoRA adapter equal to a BD adapter: each packed block-diagonal factor expanded to
     * its dense block_diag form with zeros off the diagonal, in the same dtype (exact); use_bdlora removed.
     */
    public static void densify(Path in, Path out) {
        Path cfgFile = in.resolve(PeftAdapterLoader.CONFIG);
        AdapterConfig cfg = PeftAdapterLoader.parseConfig(cfgFile);
        if (cfg.bd() == null) throw new ModelFormatException(cfgFile + ": not a BD-LoRA adapter (no use_bdlora); nothing to densify");
        int n = cfg.bd().nblocks();
        ObjectNode json;
        try {
            json = (ObjectNode) new ObjectMapper().readTree(cfgFile.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(cfgFile + ": " + e.getMessage(), e);
        }
        json.remove("use_bdlora");
        Map<String, Matrix> tensors = new LinkedHashMap<>();
        Path wFile = in.resolve(PeftAdapterLoader.WEIGHTS);
        try (Safetensors st = Safetensors.open(wFile)) {
            for (String name : st.tensors().keySet()) {
                Matrix m = st.readMatrix(name);
                LoraModule mod = null;
                for (LoraModule x : LoraModule.values()) if (name.contains("." + x.projName() + ".")) mod = x;
                boolean isA = name.endsWith("lora_A.weight");
                if (mod != null && isA && cfg.bd().bdA().contains(mod)) m = blockDiag(m, n);
                else if (mod != null && !isA && cfg.bd().bdB().contains(mod)) m = blockDiag(m, n);
                tensors.put(name, m);
            }
        }
        PeftAdapterWriter.write(out, json, tensors);
    }

    /** Packed [rows, k] (block j = rows j·rows/n ..) → dense [rows, k·n] block-diagonal. */
    static Matrix blockDiag(Matrix packed, int n) {
        int rows = packed.rows(), k = packed.cols(), h = rows / n;
        float[] f = new float[rows * k * n];
        for (int r = 0; r < rows; r++) {
            int j = r / h;
            for (int c = 0; c < k; c++) f[r * k * n + j * k + c] = packed.get(r, c);
        }
        return Matrix.fromFloats(packed.dtype(), rows, k * n, f); // values are exact in the source dtype
    }
}
