package dev.bdserve.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import dev.bdserve.model.io.Safetensors;
import dev.bdserve.tensor.DType;
import dev.bdserve.tensor.Matrix;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Loads a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors, spec §3), ordinary or
 * BD-LoRA, and rejects with one precise message (file, tensor, problem) anything that would change the
 * inference math in a way we do not implement or that does not fit the base model.
 */
public final class PeftAdapterLoader {
    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";
    private static final Pattern TENSOR = Pattern.compile(
            "base_model\\.model\\.model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(q_proj|k_proj|v_proj|qkv_proj|o_proj|gate_proj|up_proj|gate_up_proj|down_proj)\\.lora_([AB])\\.weight");
    private static final ObjectMapper JSON = new ObjectMapper();

    private PeftAdapterLoader() {}

    /**
     * Loads and validates an adapter for a base model: a PEFT folder, or a GGUF LoRA file as llama.cpp writes it
     * ({@link GgufLoraAdapters}); {@code maxRank} is the server's --max-lora-rank.
     */
    public static LoraAdapter load(String name, Path dir, LlamaConfig base, int maxRank) {
        if (GgufLoraAdapters.isGguf(dir)) return GgufLoraAdapters.load(name, dir, base, maxRank);
        Path cfgFile = dir.resolve(CONFIG), wFile = dir.resolve(WEIGHTS);
        if (!Files.isDirectory(dir)) throw new ModelFormatException("adapter folder not found: " + dir);
        if (!Files.isRegularFile(cfgFile)) throw new ModelFormatException(dir + ": no " + CONFIG);
        if (!Files.isRegularFile(wFile)) {
            if (Files.exists(dir.resolve("adapter_model.bin")))
                throw new ModelFormatException(dir + ": adapter_model.bin (pickle) is not supported; save the adapter with safe_serialization=True");
            throw new ModelFormatException(dir + ": no " + WEIGHTS);
        }
        AdapterConfig cfg = parseConfig(cfgFile);
        checkTargets(cfgFile, cfg, base);
        LoraWeights[][] modules = new LoraWeights[base.numLayers()][LoraModule.values().length];
        try (Safetensors st = Safetensors.open(wFile)) {
            Map<String, Safetensors.TensorInfo> tensors = st.tensors();
            // Group tensor names by (layer, module).
            Map<String, String[]> pairs = new LinkedHashMap<>(); // "layer/module" -> [A name, B name]
            for (String t : tensors.keySet()) {
                Matcher m = TENSOR.matcher(t);
                if (!m.matches()) throw new ModelFormatException(wFile + ": tensor '" + t + "' " + unsupportedReason(t));
                int layer = Integer.parseInt(m.group(1));
                if (layer >= base.numLayers())
                    throw new ModelFormatException(wFile + ": tensor '" + t + "' refers to layer " + layer + " but the base model has " + base.numLayers() + " layers");
                String key = layer + "/" + m.group(3);
                pairs.computeIfAbsent(key, k -> new String[2])[m.group(4).equals("A") ? 0 : 1] = t;
            }
            if (pairs.isEmpty()) throw new ModelFormatException(wFile + ": no LoRA tensors");
            for (var e : pairs.entrySet()) {
                int layer = Integer.parseInt(e.getKey().substring(0, e.getKey().indexOf('/')));
                String peftName = e.getKey().substring(e.getKey().indexOf('/') + 1);
                List<LoraModule.Part> parts = LoraModule.parts(peftName, base);
                String path = LoraModule.peftPath(layer, peftName);
                String aName = e.getValue()[0], bName = e.getValue()[1];
                if (parts == null)
                    throw new ModelFormatException(wFile + ": tensor '" + (aName != null ? aName : bName) + "' adapts " + path + ", which the "
                            + base.variant().family() + " model does not have (its modules: " + String.join(", ", LoraModule.peftNames(base)) + ")");
                if (aName == null) throw new ModelFormatException(wFile + ": module " + path + " has lora_B but no lora_A");
                if (bName == null) throw new ModelFormatException(wFile + ": module " + path + " has lora_A but no lora_B");
                if (!cfg.targets(path, parts.getFirst().module(), layer))
                    throw new ModelFormatException(wFile + ": tensor '" + aName + "' adapts " + path + ", which target_modules in " + CONFIG + " does not select");
                if (parts.size() == 1) {
                    LoraModule mod = parts.getFirst().module();
                    modules[layer][mod.ordinal()] = loadModule(st, wFile, cfg, base, layer, mod, aName, bName, maxRank);
                } else {
                    for (LoraWeights w : loadFused(st, wFile, cfg, base, path, parts, aName, bName, maxRank))
                        modules[layer][w.module().ordinal()] = w;
                }
            }
        }
        return new LoraAdapter(name, dir, contentHash(cfgFile, wFile), cfg, modules);
    }

    private static String unsupportedReason(String t) {
        if (t.contains("lora_magnitude_vector")) return "is a DoRA magnitude vector; DoRA is not supported";
        if (t.endsWith(".bias")) return "is a LoRA bias; only bias \"none\" is supported";
        if (t.contains("lm_head") || t.contains("embed_tokens"))
            return "adapts the embedding or LM head (modules_to_save or embedding LoRA), which is not supported";
        if (t.contains("lora_embedding")) return "is an embedding LoRA factor, which is not supported";
        return "is not a LoRA factor of a decoder projection (expected base_model.model.model.layers.{i}.{self_attn|mlp}.{q,k,v,qkv,o,gate,up,gate_up,down}_proj.lora_{A,B}.weight)";
    }

    /**
     * A fused module of Phi-3 (qkv_proj, gate_up_proj): one A [r, hidden] and one B [Σ parts' out, r], served as one
     * dense LoRA per part that shares A and takes its rows of s·B, so each part shards with its projection under TP.
     */
    private static List<LoraWeights> loadFused(Safetensors st, Path file, AdapterConfig cfg, LlamaConfig base, String path,
                                               List<LoraModule.Part> parts, String aName, String bName, int maxRank) {
        Safetensors.TensorInfo ai = factorInfo(st, file, aName), bi = factorInfo(st, file, bName);
        int in = parts.getFirst().module().in(base), out = 0;
        for (LoraModule.Part p : parts) out += p.module().out(base);
        long[] as = ai.shape(), bs = bi.shape();
        int r = (int) as[0];
        checkRank(file, aName, path, r, maxRank);
        checkConfigRank(file, cfg, aName, path, r);
        if (as[1] != in) throw new ModelFormatException(file + ": tensor '" + aName + "' has shape [" + as[0] + ", " + as[1] + "], expected [" + r + ", " + in + "]");
        if (bs[0] != out || bs[1] != r)
            throw new ModelFormatException(file + ": tensor '" + bName + "' has shape [" + bs[0] + ", " + bs[1] + "], expected [" + out + ", " + r
                    + "] (the fused " + path.substring(path.lastIndexOf('.') + 1) + " rows of " + parts.stream().map(p -> p.module().projName()).toList() + ")");
        Matrix a = st.readMatrix(aName), b = st.readMatrix(bName);
        checkFinite(file, aName, a);
        checkFinite(file, bName, b);
        double s = cfg.scaling(path, r);
        Matrix sb = foldScaling(b, s);
        checkScaled(file, path, bName, r, s, a, sb);
        List<LoraWeights> ws = new java.util.ArrayList<>();
        for (LoraModule.Part p : parts)
            ws.add(new LoraWeights(p.module(), LoraKind.DENSE, r, 1, s, a, sb.sliceRows(p.row(), p.row() + p.module().out(base))));
        return ws;
    }

    /** A LoRA factor's tensor info: 2-D, of a float dtype the loader reads. */
    private static Safetensors.TensorInfo factorInfo(Safetensors st, Path file, String name) {
        Safetensors.TensorInfo ti = st.info(name);
        if (ti.dtype() == null)
            throw new ModelFormatException(file + ": tensor '" + ti.name() + "' has dtype " + ti.dtypeName() + "; expected F32, BF16 or F16");
        if (ti.shape().length != 2)
            throw new ModelFormatException(file + ": tensor '" + ti.name() + "' has " + ti.shape().length + " dimensions; expected 2");
        return ti;
    }

    /**
     * The rank adapter_config.json gives the module (rank_pattern, else r) must be the rank its tensors have: PEFT
     * scales by alpha over the configured rank, so a mismatch would serve a different scaling than the adapter was
     * trained with.
     */
    private static void checkConfigRank(Path file, AdapterConfig cfg, String aName, String path, int r) {
        int want = cfg.rankFor(path);
        if (want != r)
            throw new ModelFormatException(file + ": tensor '" + aName + "' has rank " + r + ", but " + CONFIG + " gives module " + path + " rank "
                    + want + (cfg.rankPattern().isEmpty() ? " (r)" : " (rank_pattern or r)"));
    }

    /**
     * The largest entry of a module's update s·B·A may reach, r · max|A| · max|s·B|, must be finite and at most
     * {@link #MAX_UPDATE}: checked after the scaling is folded in, so a huge lora_alpha or huge weights, each finite on
     * its own, cannot turn the model's activations into Inf. MAX_UPDATE is fp16's largest value: a trained adapter's
     * update is many orders of magnitude below it.
     */
    static void checkScaled(Path file, String module, String bName, int r, double s, Matrix a, Matrix sb) {
        if (!Double.isFinite(s) || s == 0)
            throw new ModelFormatException(file + ": module " + module + " has scaling " + s + " (lora_alpha / r); it must be finite and non-zero");
        float maxA = maxAbs(a), maxSb = maxAbs(sb);
        double bound = (double) r * maxA * maxSb;
        if (!Float.isFinite(maxSb))
            throw new ModelFormatException(file + ": tensor '" + bName + "' times the scaling " + s + " (lora_alpha / r) overflows fp32 (Inf); "
                    + "lora_alpha or the weights are out of range");
        if (!(bound <= MAX_UPDATE))
            throw new ModelFormatException(file + ": module " + module + " can change a weight by up to " + String.format("%.3g", bound)
                    + " (rank " + r + " × max|A| " + maxA + " × max|scaling · B| " + maxSb + "), beyond " + MAX_UPDATE + "; lora_alpha or the weights are out of range");
    }

    /** The bound on a module's update, r · max|A| · max|s·B|: fp16's largest finite value. */
    static final double MAX_UPDATE = 65504;

    private static float maxAbs(Matrix m) {
        float mx = 0;
        float[] f = m.toFloats();
        for (float v : f) mx = Math.max(mx, Math.abs(v));
        for (float v : f) if (!Float.isFinite(v)) return Float.POSITIVE_INFINITY;
        return mx;
    }

    private static void checkRank(Path file, String aName, String path, int r, int maxRank) {
        if (r < 1) throw new ModelFormatException(file + ": tensor '" + aName + "' has rank 0");
        if (r > maxRank) throw new ModelFormatException(file + ": module " + path + " has rank " + r + ", above the maximum LoRA rank " + maxRank + " (--max-lora-rank)");
    }

    private static LoraWeights loadModule(Safetensors st, Path file, AdapterConfig cfg, LlamaConfig base, int layer,
                                          LoraModule mod, String aName, String bName, int maxRank) {
        Safetensors.TensorInfo ai = factorInfo(st, file, aName), bi = factorInfo(st, file, bName);
        long[] as = ai.shape(), bs = bi.shape();
        LoraKind kind = cfg.kindOf(mod);
        int n = kind == LoraKind.DENSE ? 1 : cfg.bd().nblocks();
        int in = mod.in(base), out = mod.out(base);
        int r = (int) as[0];
        String path = mod.path(layer);
        String hint = cfg.baseModel() != null ? " (adapter trained for " + cfg.baseModel() + "; is it for a different base model?)" : " (is the adapter for a different base model?)";
        checkRank(file, aName, path, r, maxRank);
        checkConfigRank(file, cfg, aName, path, r);
        if (n > 1) {
            if (r % n != 0) throw new ModelFormatException(file + ": module " + path + " has rank " + r + ", not divisible by nblocks " + n);
            int split = kind == LoraKind.BD_A ? in : out;
            if (split % n != 0)
                throw new ModelFormatException(file + ": module " + path + " has " + (kind == LoraKind.BD_A ? "in_features " : "out_features ")
                        + split + ", not divisible by nblocks " + n);
        }
        long expAcols = kind == LoraKind.BD_A ? in / n : in;
        long expBcols = kind == LoraKind.BD_B ? r / n : r;
        if (as[1] != expAcols)
            throw new ModelFormatException(file + ": tensor '" + aName + "' has shape [" + as[0] + ", " + as[1] + "], expected [" + r + ", " + expAcols + "]"
                    + (kind == LoraKind.BD_A ? " (block-diagonal A packed as [r, in/nblocks])" : "") + hint);
        if (bs[0] != out || bs[1] != expBcols)
            throw new ModelFormatException(file + ": tensor '" + bName + "' has shape [" + bs[0] + ", " + bs[1] + "], expected [" + out + ", " + expBcols + "]"
                    + (kind == LoraKind.BD_B ? " (block-diagonal B packed as [out, r/nblocks])" : "") + hint);
        Matrix a = st.readMatrix(aName), b = st.readMatrix(bName);
        checkFinite(file, aName, a);
        checkFinite(file, bName, b);
        double s = cfg.scaling(path, r);
        Matrix sb = foldScaling(b, s);
        checkScaled(file, path, bName, r, s, a, sb);
        return new LoraWeights(mod, kind, r, n, s, a, sb);
    }

    /**
     * s·B. Exact in the stored dtype when s is a power of two; otherwise B is kept in fp32 so that the folding
     * adds no rounding beyond fp32's.
     */
    static Matrix foldScaling(Matrix b, double s) {
        boolean powerOfTwo = s > 0 && Math.scalb(1.0, Math.getExponent(s)) == s;
        float[] f = b.toFloats();
        for (int i = 0; i < f.length; i++) f[i] = (float) (f[i] * s);
        if (b.dtype() != DType.F32 && powerOfTwo) return Matrix.fromFloats(b.dtype(), b.rows(), b.cols(), f);
        return Matrix.ofF32(b.rows(), b.cols(), f);
    }

    private static void checkFinite(Path file, String name, Matrix m) {
        for (int r = 0; r < m.rows(); r++)
            for (int c = 0; c < m.cols(); c++) {
                float v = m.get(r, c);
                if (!Float.isFinite(v))
                    throw new ModelFormatException(file + ": tensor '" + name + "' has " + (Float.isNaN(v) ? "NaN" : "Inf") + " at [" + r + ", " + c + "]");
            }
    }

    /** Parses adapter_config.json, rejecting what changes the math and is not supported. */
    public static AdapterConfig parseConfig(Path file) {
        JsonNode j;
        try {
            j = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (j == null || !j.isObject()) throw new ModelFormatException(file + ": expected a JSON object");
        String peftType = text(j, "peft_type", "LORA");
        if (!peftType.equalsIgnoreCase("LORA")) throw new ModelFormatException(file + ": peft_type " + peftType + " is not supported (only LORA)");
        if (j.path("use_dora").asBoolean(false)) throw new ModelFormatException(file + ": use_dora is true; DoRA adapters are not supported");
        JsonNode mts = j.get("modules_to_save");
        if (mts != null && !mts.isNull() && !(mts.isArray() && mts.isEmpty()))
            throw new ModelFormatException(file + ": modules_to_save " + mts + " is not supported (it replaces whole base modules)");
        String bias = text(j, "bias", "none");
        if (!bias.equals("none")) throw new ModelFormatException(file + ": bias \"" + bias + "\" is not supported (only \"none\")");
        if (j.path("lora_bias").asBoolean(false)) throw new ModelFormatException(file + ": lora_bias is true; LoRA biases are not supported");
        JsonNode rNode = j.get("r");
        int r = rNode == null ? 8 : rNode.asInt(-1);
        if (r < 1) throw new ModelFormatException(file + ": r must be a positive integer, got " + rNode);
        JsonNode alphaNode = j.get("lora_alpha");
        double alpha = alphaNode == null || alphaNode.isNull() ? 8 : alphaNode.asDouble(Double.NaN);
        if (!Double.isFinite(alpha)) throw new ModelFormatException(file + ": lora_alpha must be a number, got " + alphaNode);
        JsonNode tm = j.get("target_modules");
        List<String> list = null;
        String regex = null;
        boolean allLinear = false;
        if (tm == null || tm.isNull()) throw new ModelFormatException(file + ": target_modules is missing");
        if (tm.isTextual()) {
            if (tm.asText().equals("all-linear")) allLinear = true;
            else {
                regex = tm.asText();
                new BoundedRegex(regex, file + ": target_modules regex");   // refuses one too long or invalid, naming the file
            }
        } else if (tm.isArray()) {
            list = new ArrayList<>();
            for (JsonNode t : tm) list.add(t.asText());
        } else throw new ModelFormatException(file + ": target_modules must be a list, a regex string or \"all-linear\"");
        Map<String, Integer> rankPattern = new HashMap<>();
        j.path("rank_pattern").properties().forEach(e -> {
            checkPattern(file, "rank_pattern", e.getKey());
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 1)
                throw new ModelFormatException(file + ": rank_pattern['" + e.getKey() + "'] must be a positive integer");
            rankPattern.put(e.getKey(), e.getValue().asInt());
        });
        Map<String, Double> alphaPattern = new HashMap<>();
        j.path("alpha_pattern").properties().forEach(e -> {
            checkPattern(file, "alpha_pattern", e.getKey());
            if (!e.getValue().isNumber()) throw new ModelFormatException(file + ": alpha_pattern['" + e.getKey() + "'] must be a number");
            alphaPattern.put(e.getKey(), e.getValue().asDouble());
        });
        Set<Integer> layers = null;
        JsonNode ltt = j.get("layers_to_transform");
        if (ltt != null && !ltt.isNull()) {
            layers = new TreeSet<>();
            if (ltt.isInt()) layers.add(ltt.asInt());
            else for (JsonNode x : ltt) layers.add(x.asInt());
        }
        AdapterConfig.BdConfig bd = null;
        JsonNode bdn = j.get("use_bdlora");
        if (bdn != null && !bdn.isNull() && !(bdn.isBoolean() && !bdn.asBoolean())) {
            if (!bdn.isObject()) throw new ModelFormatException(file + ": use_bdlora must be an object with target_modules_bd_a, target_modules_bd_b and nblocks");
            int nb = bdn.path("nblocks").asInt(-1);
            if (nb < 1) throw new ModelFormatException(file + ": use_bdlora.nblocks must be a positive integer, got " + bdn.get("nblocks"));
            Set<LoraModule> bdA = bdModules(file, bdn, "target_modules_bd_a", false);
            Set<LoraModule> bdB = bdModules(file, bdn, "target_modules_bd_b", true);
            bd = new AdapterConfig.BdConfig(bdA, bdB, nb);
        }
        String baseModel = j.hasNonNull("base_model_name_or_path") ? j.get("base_model_name_or_path").asText() : null;
        try {
            return new AdapterConfig(r, alpha, list, regex, allLinear, j.path("use_rslora").asBoolean(false),
                    rankPattern, alphaPattern, baseModel, layers, bd);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file + ": " + e.getMessage());
        }
    }

    private static void checkPattern(Path file, String field, String key) {
        if (key.length() > BoundedRegex.MAX_LENGTH)
            throw new ModelFormatException(file + ": " + field + " has a key of " + key.length() + " characters; at most " + BoundedRegex.MAX_LENGTH + " are accepted");
        try { Pattern.compile(key); } catch (PatternSyntaxException e) {
            throw new ModelFormatException(file + ": " + field + " key '" + key + "' is not a valid pattern: " + e.getDescription());
        }
    }

    private static Set<LoraModule> bdModules(Path file, JsonNode bd, String field, boolean columnParallel) {
        Set<LoraModule> out = EnumSet.noneOf(LoraModule.class);
        for (JsonNode x : bd.path(field)) {
            if (x.asText().equals(LoraModule.FUSED_QKV) || x.asText().equals(LoraModule.FUSED_GATE_UP))
                throw new ModelFormatException(file + ": use_bdlora." + field + " names the fused module " + x.asText() + ", whose B blocks cover contiguous "
                        + "rows of " + (x.asText().equals(LoraModule.FUSED_QKV) ? "[q; k; v]" : "[gate; up]") + " and cannot align with the per-part "
                        + "shards each tensor-parallel rank holds; use a dense LoRA on " + x.asText() + " (BD-LoRA stays available on o_proj and down_proj)");
            LoraModule m = LoraModule.byName(x.asText());
            if (m == null) throw new ModelFormatException(file + ": use_bdlora." + field + " names '" + x.asText() + "', which is not a Llama projection");
            if (m.columnParallel() != columnParallel)
                throw new ModelFormatException(file + ": use_bdlora." + field + " names " + m + ", which is " + (m.columnParallel() ? "column" : "row")
                        + "-parallel; BD-LoRA makes B block-diagonal in column-parallel modules (target_modules_bd_b) and A in row-parallel ones (target_modules_bd_a)");
            out.add(m);
        }
        return out;
    }

    /** Every target_modules entry must name something the model has. */
    private static void checkTargets(Path file, AdapterConfig cfg, LlamaConfig base) {
        if (cfg.allLinear()) return;
        List<String> names = LoraModule.peftNames(base);
        if (cfg.targetRegex() != null) {
            boolean any = false;
            for (int l = 0; l < base.numLayers() && !any; l++)
                for (String n : names) if (cfg.targets(LoraModule.peftPath(l, n), LoraModule.parts(n, base).getFirst().module(), l)) { any = true; break; }
            if (!any) throw new ModelFormatException(file + ": target_modules regex '" + cfg.targetRegex() + "' matches no module of the model");
            return;
        }
        for (String t : cfg.targetList()) {
            String last = t.substring(t.lastIndexOf('.') + 1);
            if (!names.contains(last))
                throw new ModelFormatException(file + ": target_modules names '" + t + "', which the " + base.variant().family() + " model does not have (its modules: "
                        + String.join(", ", names) + ")");
        }
    }

    private static String text(JsonNode j, String key, String def) {
        JsonNode n = j.get(key);
        return n == null || n.isNull() ? def : n.asText();
    }

    /** SHA-256 over the files' bytes in order: two adapters share cached KV blocks only when it is equal. */
    static String contentHash(Path... files) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (Path f : files)
                try (InputStream in = Files.newInputStream(f)) {
                    for (int k; (k = in.read(buf)) > 0; ) md.update(buf, 0, k);
                } catch (IOException e) {
                    throw new ModelFormatException("cannot read adapter file " + f + ": " + e.getMessage(), e);
                }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
