package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.Rope;
import dev.bdserve.model.gguf.GgmlCodec;
import dev.bdserve.model.gguf.GgmlType;
import dev.bdserve.model.gguf.GgufFile;
import dev.bdserve.model.gguf.GgufModelSource;
import dev.bdserve.model.gguf.GgufWriter;
import dev.bdserve.tensor.Matrix;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * LoRA adapters as llama.cpp stores them in GGUF ({@code convert_lora_to_gguf.py}, read by {@code
 * llama_adapter_lora_init}): {@code general.type = adapter}, {@code adapter.type = lora}, {@code adapter.lora.alpha},
 * the base model's {@code general.architecture}, and per adapted weight {@code NAME.lora_a} (GGUF dims [in, r], the
 * PEFT lora_A [r, in]) and {@code NAME.lora_b} ([r, out], the PEFT lora_B [out, r]) named after the base tensor
 * ({@code blk.3.attn_q.weight.lora_a}). llama.cpp scales by alpha / r (1 when alpha is 0). For {@code llama}
 * models the q and k B rows are in the base file's interleaved RoPE order.
 *
 * <p>Writing takes a PEFT adapter (any scaling: rsLoRA and rank / alpha patterns are folded into lora_b so that
 * alpha / r times it is PEFT's s·B; BD-LoRA factors are written dense, which is exact), so one adapter serves on both
 * engines. Reading gives a dense {@link LoraAdapter} (Phi-3's fused qkv / gate_up split per part, as PEFT's).
 */
public final class GgufLoraAdapters {
    private GgufLoraAdapters() {}

    /** Whether {@code path} is a GGUF file (by its magic), i.e. an adapter to read here rather than a PEFT folder. */
    public static boolean isGguf(Path path) {
        if (!Files.isRegularFile(path)) return false;
        try (InputStream in = Files.newInputStream(path)) {
            byte[] m = in.readNBytes(4);
            return m.length == 4 && m[0] == 'G' && m[1] == 'G' && m[2] == 'U' && m[3] == 'F';
        } catch (IOException e) {
            return false;
        }
    }

    /** The base tensor of every PEFT module of the model: GGUF name (without ".weight") → (layer, PEFT name). */
    private record Target(int layer, String peftName, String hfWeight) {}

    private static Map<String, Target> targets(LlamaConfig base) {
        Map<String, Target> m = new HashMap<>();
        for (int l = 0; l < base.numLayers(); l++)
            for (String n : LoraModule.peftNames(base)) {
                String hf = LoraModule.peftPath(l, n) + ".weight";
                m.put(GgufModelSource.ggufName(hf, base.variant()), new Target(l, n, hf));
            }
        return m;
    }

    /** llama.cpp's architecture name of a base model (Mistral is written as llama). */
    static String architecture(LlamaConfig base) {
        String f = base.variant().family();
        return f.equals("mistral") ? "llama" : f;
    }

    /** Whether the module's B rows are stored in llama's interleaved RoPE order (q, k of llama-architecture models). */
    private static boolean permuted(LlamaConfig base, String peftName) {
        return architecture(base).equals("llama") && (peftName.equals("q_proj") || peftName.equals("k_proj"));
    }

    /** Loads a GGUF LoRA adapter for {@code base}; every refusal names the file and the key or tensor. */
    public static LoraAdapter load(String name, Path file, LlamaConfig base, int maxRank) {
        try (GgufFile f = GgufFile.open(file)) {
            String type = f.string("general.type", "(absent)");
            if (!type.equals("adapter")) throw new ModelFormatException(file + ": general.type is '" + type + "', not 'adapter': not a GGUF LoRA adapter");
            String adapterType = f.string("adapter.type", "(absent)");
            if (!adapterType.equals("lora")) throw new ModelFormatException(file + ": adapter.type '" + adapterType + "' is not supported (only lora)");
            String arch = f.string("general.architecture", "(absent)");
            if (!arch.equals(architecture(base)))
                throw new ModelFormatException(file + ": the adapter is for a " + arch + " model, the base is " + architecture(base));
            double alpha = f.doubleValue("adapter.lora.alpha", 0);
            if (!Double.isFinite(alpha)) throw new ModelFormatException(file + ": adapter.lora.alpha is " + alpha);
            Map<String, Target> targets = targets(base);
            Map<String, GgufFile.TensorInfo[]> pairs = new HashMap<>();
            for (GgufFile.TensorInfo t : f.tensors()) {
                String n = t.name();
                boolean a = n.endsWith(".lora_a");
                if (!a && !n.endsWith(".lora_b"))
                    throw new ModelFormatException(file + ": tensor " + n + " is not a LoRA factor (NAME.lora_a / NAME.lora_b)");
                String w = n.substring(0, n.length() - ".lora_a".length());
                if (!targets.containsKey(w))
                    throw new ModelFormatException(file + ": tensor " + n + " adapts " + w + ", which is not a projection of the " + base.variant().family()
                            + " base (embedding and output LoRA are not supported)");
                pairs.computeIfAbsent(w, k -> new GgufFile.TensorInfo[2])[a ? 0 : 1] = t;
            }
            if (pairs.isEmpty()) throw new ModelFormatException(file + ": no LoRA tensors");
            LoraWeights[][] modules = new LoraWeights[base.numLayers()][LoraModule.values().length];
            int maxR = 0;
            Set<String> names = new TreeSet<>();
            for (var e : pairs.entrySet()) {
                Target t = targets.get(e.getKey());
                GgufFile.TensorInfo ai = e.getValue()[0], bi = e.getValue()[1];
                if (ai == null || bi == null)
                    throw new ModelFormatException(file + ": " + e.getKey() + " has " + (ai == null ? "lora_b but no lora_a" : "lora_a but no lora_b"));
                List<LoraModule.Part> parts = LoraModule.parts(t.peftName(), base);
                int in = parts.getFirst().module().in(base), out = parts.stream().mapToInt(p -> p.module().out(base)).sum();
                long[] ad = ai.dims(), bd = bi.dims();
                if (ad.length != 2 || bd.length != 2 || ad[0] != in || bd[1] != out || ad[1] != bd[0])
                    throw new ModelFormatException(file + ": " + e.getKey() + " lora_a " + java.util.Arrays.toString(ad) + " and lora_b "
                            + java.util.Arrays.toString(bd) + " do not fit the base weight [in " + in + ", out " + out + "] (GGUF dims: lora_a [in, r], lora_b [r, out])");
                int r = (int) ad[1];
                if (r < 1) throw new ModelFormatException(file + ": " + e.getKey() + " has rank 0");
                if (r > maxRank) throw new ModelFormatException(file + ": " + e.getKey() + " has rank " + r + ", above the maximum LoRA rank " + maxRank + " (--max-lora-rank)");
                float[] a = read(f, ai, file), b = read(f, bi, file);          // a [r][in], b [out][r], row-major in HF order
                if (permuted(base, t.peftName())) b = unpermuteRows(b, out, r, base.headDim());
                float s = (float) (alpha != 0 ? alpha / r : 1.0);
                for (int i = 0; i < b.length; i++) b[i] *= s;
                Matrix am = Matrix.ofF32(r, in, a), bm = Matrix.ofF32(out, r, b);
                PeftAdapterLoader.checkScaled(file, e.getKey(), bi.name(), r, s, am, bm);
                for (LoraModule.Part p : parts)
                    modules[t.layer()][p.module().ordinal()] = new LoraWeights(p.module(), LoraKind.DENSE, r, 1, s, am,
                            parts.size() == 1 ? bm : bm.sliceRows(p.row(), p.row() + p.module().out(base)));
                maxR = Math.max(maxR, r);
                names.add(t.peftName());
            }
            AdapterConfig cfg = new AdapterConfig(maxR, alpha, List.copyOf(names), null, false, false, Map.of(), Map.of(),
                    f.string("general.name", null), null, null);
            return new LoraAdapter(name, file, PeftAdapterLoader.contentHash(file), cfg, modules);
        }
    }

    private static float[] read(GgufFile f, GgufFile.TensorInfo t, Path file) {
        if (t.elements() > Integer.MAX_VALUE) throw new ModelFormatException(file + ": tensor " + t.name() + " is too large");
        float[] x = new float[(int) t.elements()];
        try {
            GgmlCodec.dequantize(t.type(), f.data(t), 0, x, 0, x.length);
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            throw new ModelFormatException(file + ": tensor " + t.name() + " of type " + t.type() + ": " + e.getMessage(), e);
        }
        for (int i = 0; i < x.length; i++)
            if (!Float.isFinite(x[i])) throw new ModelFormatException(file + ": tensor " + t.name() + " has " + x[i] + " at element " + i);
        return x;
    }

    /** HF row order of a B whose rows are in llama's interleaved RoPE order (row g of the file holds HF row r). */
    private static float[] unpermuteRows(float[] b, int rows, int cols, int headDim) {
        float[] out = new float[b.length];
        for (int r = 0; r < rows; r++) System.arraycopy(b, Rope.interleavedRow(r, headDim) * cols, out, r * cols, cols);
        return out;
    }

    /**
     * Writes {@code adapter} (loaded for {@code base}) as a GGUF LoRA adapter llama.cpp loads: alpha the adapter's
     * lora_alpha (its rank when 0), each module's B scaled so that alpha / r times it is the s·B bdserve applies, F32.
     */
    public static void write(LoraAdapter adapter, LlamaConfig base, Path file) {
        double alpha = adapter.config().loraAlpha() != 0 ? adapter.config().loraAlpha() : adapter.maxRank();
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", architecture(base));
        w.putString("general.type", "adapter");
        w.putString("general.name", adapter.name());
        w.putString("adapter.type", "lora");
        w.putF32("adapter.lora.alpha", alpha);
        for (int l = 0; l < base.numLayers(); l++)
            for (String peft : LoraModule.peftNames(base)) {
                List<LoraModule.Part> parts = LoraModule.parts(peft, base);
                List<LoraWeights> ws = new ArrayList<>();
                for (LoraModule.Part p : parts) ws.add(adapter.get(l, p.module()));
                if (ws.stream().allMatch(java.util.Objects::isNull)) continue;
                LoraWeights first = ws.stream().filter(java.util.Objects::nonNull).findFirst().orElseThrow();
                int r = first.rank(), in = first.in();
                int out = parts.stream().mapToInt(p -> p.module().out(base)).sum();
                double[][] a = first.denseA();                              // [r][in]; fused parts share A (PEFT's layout)
                float[] bf = new float[out * r];                            // [out][r], zeros for parts the adapter leaves alone
                float k = (float) (r / alpha);                              // llama.cpp applies alpha / r
                for (int i = 0; i < parts.size(); i++) {
                    LoraWeights lw = ws.get(i);
                    if (lw == null) continue;
                    if (lw.rank() != r || !sameA(lw, first))
                        throw new IllegalArgumentException("adapter " + adapter.name() + ": the parts of " + LoraModule.peftPath(l, peft)
                                + " do not share one lora_A, which a GGUF LoRA of the fused weight needs");
                    double[][] b = lw.denseB();
                    for (int o = 0; o < b.length; o++)
                        for (int c = 0; c < r; c++) bf[(parts.get(i).row() + o) * r + c] = (float) b[o][c] * k;
                }
                if (permuted(base, peft)) bf = permuteRows(bf, out, r, base.headDim());
                float[] af = new float[r * in];
                for (int i = 0; i < r; i++) for (int c = 0; c < in; c++) af[i * in + c] = (float) a[i][c];
                String name = GgufModelSource.ggufName(LoraModule.peftPath(l, peft) + ".weight", base.variant());
                w.addTensor(name + ".lora_a", new long[]{in, r}, GgmlType.F32, f32(af));
                w.addTensor(name + ".lora_b", new long[]{r, out}, GgmlType.F32, f32(bf));
            }
        w.write(file);
    }

    private static boolean sameA(LoraWeights x, LoraWeights y) {
        return x.a() == y.a() || java.util.Arrays.equals(x.a().toFloats(), y.a().toFloats()) && x.kind() == y.kind();
    }

    private static float[] permuteRows(float[] b, int rows, int cols, int headDim) {
        float[] out = new float[b.length];
        for (int r = 0; r < rows; r++) System.arraycopy(b, r * cols, out, Rope.interleavedRow(r, headDim) * cols, cols);
        return out;
    }

    private static byte[] f32(float[] x) {
        byte[] b = new byte[4 * x.length];
        GgmlCodec.quantize(GgmlType.F32, x, 0, x.length, b, 0);
        return b;
    }
}
