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

    /** The module for a PEFT name ("q_proj", "q", case-insensitive), or null. */
    public static LoraModule byName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (LoraModule m : values()) if (m.projName.equals(n) || m.projName.equals(n + "_proj")) return m;
        return null;
    }

    @Override public String toString() { return projName; }
}
