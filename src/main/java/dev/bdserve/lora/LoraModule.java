package dev.bdserve.lora;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ProjectionGroup;

import java.util.Locale;

/**
 * The seven linear projections of a Llama decoder layer that adapters target, with their tensor-parallel
 * role (spec §1): q, k, v, gate, up are column-parallel; o and down are row-parallel.
 */
public enum LoraModule {
    Q("self_attn", "q_proj", true),
    K("self_attn", "k_proj", true),
    V("self_attn", "v_proj", true),
    O("self_attn", "o_proj", false),
    GATE("mlp", "gate_proj", true),
    UP("mlp", "up_proj", true),
    DOWN("mlp", "down_proj", false);

    private final String block;
    private final String projName;
    private final boolean columnParallel;

    LoraModule(String block, String projName, boolean columnParallel) {
        this.block = block;
        this.projName = projName;
        this.columnParallel = columnParallel;
    }

    /** The PEFT module name, e.g. "q_proj". */
    public String projName() { return projName; }

    /** True for q, k, v, gate, up (output split across ranks); false for o and down (input split). */
    public boolean columnParallel() { return columnParallel; }

    /** Module path inside the model, e.g. "model.layers.3.self_attn.q_proj". */
    public String path(int layer) { return "model.layers." + layer + "." + block + "." + projName; }

    /** in_features of this projection. */
    public int in(LlamaConfig c) {
        return switch (this) {
            case Q, K, V, GATE, UP -> c.hiddenSize();
            case O -> c.qDim();
            case DOWN -> c.intermediateSize();
        };
    }

    /** out_features of this projection. */
    public int out(LlamaConfig c) {
        return switch (this) {
            case Q -> c.qDim();
            case K, V -> c.kvDim();
            case O, DOWN -> c.hiddenSize();
            case GATE, UP -> c.intermediateSize();
        };
    }

    /** The group whose fused projection this module is part of. */
    public ProjectionGroup group() {
        return switch (this) {
            case Q, K, V -> ProjectionGroup.QKV;
            case O -> ProjectionGroup.O;
            case GATE, UP -> ProjectionGroup.GATE_UP;
            case DOWN -> ProjectionGroup.DOWN;
        };
    }

    /** The modules of a group, in the order their outputs sit side by side in the fused projection. */
    public static LoraModule[] members(ProjectionGroup g) {
        return switch (g) {
            case QKV -> new LoraModule[]{Q, K, V};
            case O -> new LoraModule[]{O};
            case GATE_UP -> new LoraModule[]{GATE, UP};
            case DOWN -> new LoraModule[]{DOWN};
        };
    }

    /** A projection's rows inside a fused checkpoint module: {@code module}'s out rows start at {@code row}. */
    public record Part(LoraModule module, int row) {}

    /** The fused PEFT module names of Phi-3 (HF modeling_phi3), which hold several of these projections' rows. */
    public static final String FUSED_QKV = "qkv_proj", FUSED_GATE_UP = "gate_up_proj";

    /**
     * The projections behind a PEFT module name of a model, with their row offsets: the module itself ({@code q_proj}
     * → Q at row 0), or for a model with fused projections the parts of {@code qkv_proj} ([q; k; v]) and {@code
     * gate_up_proj} ([gate; up]). Null when the model has no module of that name (q_proj in Phi-3, qkv_proj in Llama).
     */
    public static java.util.List<Part> parts(String peftName, LlamaConfig c) {
        boolean fusedQkv = c.variant().fusedQkv(), fusedGateUp = c.variant().fusedGateUp();
        if (peftName.equals(FUSED_QKV))
            return fusedQkv ? java.util.List.of(new Part(Q, 0), new Part(K, c.qDim()), new Part(V, c.qDim() + c.kvDim())) : null;
        if (peftName.equals(FUSED_GATE_UP))
            return fusedGateUp ? java.util.List.of(new Part(GATE, 0), new Part(UP, c.intermediateSize())) : null;
        LoraModule m = byName(peftName);
        if (m == null || !peftName.endsWith("_proj")) return null;
        if (fusedQkv && m.group() == ProjectionGroup.QKV || fusedGateUp && m.group() == ProjectionGroup.GATE_UP) return null;
        return java.util.List.of(new Part(m, 0));
    }

    /** The PEFT module names of a model's layer, e.g. qkv_proj, o_proj, gate_up_proj, down_proj for Phi-3. */
    public static java.util.List<String> peftNames(LlamaConfig c) {
        java.util.List<String> n = new java.util.ArrayList<>();
        if (c.variant().fusedQkv()) n.add(FUSED_QKV); else n.addAll(java.util.List.of("q_proj", "k_proj", "v_proj"));
        n.add("o_proj");
        if (c.variant().fusedGateUp()) n.add(FUSED_GATE_UP); else n.addAll(java.util.List.of("gate_proj", "up_proj"));
        n.add("down_proj");
        return n;
    }

    /** The module path of a PEFT name in layer {@code layer}, e.g. "model.layers.3.self_attn.qkv_proj". */
    public static String peftPath(int layer, String peftName) {
        String block = peftName.equals(FUSED_GATE_UP) || peftName.startsWith("gate") || peftName.startsWith("up") || peftName.startsWith("down") ? "mlp" : "self_attn";
        return "model.layers." + layer + "." + block + "." + peftName;
    }

    /** The module for a PEFT name ("q_proj", "q", case-insensitive), or null. */
    public static LoraModule byName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (LoraModule m : values()) if (m.projName.equals(n) || m.projName.equals(n + "_proj")) return m;
        return null;
    }

    @Override public String toString() { return projName; }
}
