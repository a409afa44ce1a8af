package dev.bdserve.lab.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.lora.LoraModule;
import dev.bdserve.lora.PeftAdapterWriter;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.tensor.Matrix;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The trainable LoRA / BD-LoRA parameters of a whole model: per layer and targeted module one
 * {@link LoraFactor} (null for modules not targeted), with gradient buffers, and the export to a PEFT
 * folder (spec §3; BD factors packed, {@code use_bdlora} in the config).
 */
public final class TrainableAdapter {
    private final LoraSpec spec;
    private final LlamaConfig config;
    private final LoraFactor[][] factors; // [layer][LoraModule.ordinal()]

    public TrainableAdapter(LoraSpec spec, LlamaConfig c) {
        spec.checkFits(c);
        this.spec = spec;
        this.config = c;
        this.factors = new LoraFactor[c.numLayers()][LoraModule.values().length];
        for (int l = 0; l < c.numLayers(); l++)
            for (LoraModule m : spec.targets())
                factors[l][m.ordinal()] = new LoraFactor(m, spec.rank(), m.in(c), m.out(c), spec.aBlocks(m), spec.bBlocks(m), spec.scaling());
    }

    /** PEFT initialisation (A Kaiming-uniform, B = 0), deterministic from the seed. */
    public TrainableAdapter initPeft(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (LoraFactor f : all()) f.initPeft(rng.split());
        return this;
    }

    /** A twin with the same shapes whose gradient buffers a worker thread accumulates into. */
    public TrainableAdapter gradientTwin() { return new TrainableAdapter(spec, config); }

    public LoraSpec spec() { return spec; }
    public LlamaConfig config() { return config; }

    /** The factor of a module, or null when it is not adapted. */
    public LoraFactor get(int layer, LoraModule m) { return factors[layer][m.ordinal()]; }

    /** All factors, layer by layer in module order. */
    public List<LoraFactor> all() {
        List<LoraFactor> out = new ArrayList<>();
        for (LoraFactor[] l : factors) for (LoraFactor f : l) if (f != null) out.add(f);
        return out;
    }

    /** Parameter tensors in a fixed order (A then B of each factor), for the optimizer and checkpoints. */
    public List<float[]> parameters() {
        List<float[]> p = new ArrayList<>();
        for (LoraFactor f : all()) { p.add(f.a); p.add(f.b); }
        return p;
    }

    /** Gradient tensors in the order of {@link #parameters()}. */
    public List<float[]> gradients() {
        List<float[]> p = new ArrayList<>();
        for (LoraFactor f : all()) { p.add(f.gradA); p.add(f.gradB); }
        return p;
    }

    public long parameterCount() {
        long n = 0;
        for (float[] p : parameters()) n += p.length;
        return n;
    }

    public void zeroGrad() { for (float[] g : gradients()) java.util.Arrays.fill(g, 0f); }

    /** this.grad += other.grad (summing the workers' gradients). */
    public void addGradients(TrainableAdapter other) {
        List<float[]> a = gradients(), b = other.gradients();
        for (int i = 0; i < a.size(); i++) {
            float[] x = a.get(i), y = b.get(i);
            for (int j = 0; j < x.length; j++) x[j] += y[j];
        }
    }

    /** PEFT's adapter_config.json for this adapter. */
    public ObjectNode peftConfig(String baseModel) {
        List<String> names = spec.targets().stream().sorted().map(LoraModule::projName).toList();
        ObjectNode c = PeftAdapterWriter.baseConfig(spec.rank(), spec.alpha(), names, spec.rslora(), baseModel);
        if (spec.method() == LoraSpec.Method.BDLORA) PeftAdapterWriter.addBdConfig(c, spec.nblocks());
        return c;
    }

    /** Tensors in PEFT naming and (packed) shapes, fp32, B unscaled. */
    public Map<String, Matrix> peftTensors() {
        Map<String, Matrix> t = new LinkedHashMap<>();
        for (int l = 0; l < factors.length; l++)
            for (LoraModule m : LoraModule.values()) {
                LoraFactor f = factors[l][m.ordinal()];
                if (f == null) continue;
                t.put(PeftAdapterWriter.tensorName(l, m, true), Matrix.ofF32(f.rank, f.aCols, f.a.clone()));
                t.put(PeftAdapterWriter.tensorName(l, m, false), Matrix.ofF32(f.out, f.bCols, f.b.clone()));
            }
        return t;
    }

    /** Writes the PEFT folder (adapter_config.json + adapter_model.safetensors). */
    public void writePeft(Path dir, String baseModel) {
        PeftAdapterWriter.write(dir, peftConfig(baseModel), peftTensors());
    }
}
