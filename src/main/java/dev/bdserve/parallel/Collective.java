package dev.bdserve.parallel;

/**
 * Where in the model a collective is issued, for the per-kind, per-layer-type counters (issue: every
 * collective is counted). The base model needs {@link #ATTN_OUT} and {@link #MLP_OUT} per layer and
 * {@link #LOGITS} per step (spec §1); S-LoRA adds one per adapted module group (spec §2).
 */
public enum Collective {
    /** All-reduce of the o_proj partial sums. */
    ATTN_OUT,
    /** All-reduce of the down_proj partial sums. */
    MLP_OUT,
    /** All-gather of the vocab-parallel logits. */
    LOGITS,
    /** S-LoRA all-gather of the q/k/v shrink output. */
    LORA_QKV,
    /** S-LoRA all-reduce of the o_proj shrink output. */
    LORA_O,
    /** S-LoRA all-gather of the gate/up shrink output. */
    LORA_GATE_UP,
    /** S-LoRA all-reduce of the down_proj shrink output. */
    LORA_DOWN,
    /** Rank 0's broadcast of a step or control message. */
    CONTROL
}
