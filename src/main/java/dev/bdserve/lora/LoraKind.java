package dev.bdserve.lora;

/** How one module's LoRA factors are stored. */
public enum LoraKind {
    /** Ordinary LoRA: A [r, in], B [out, r]. */
    DENSE,
    /** BD-LoRA on a row-parallel module: A block-diagonal, packed [r, in/n]; B [out, r]. */
    BD_A,
    /** BD-LoRA on a column-parallel module: A [r, in]; B block-diagonal, packed [out, r/n]. */
    BD_B
}
