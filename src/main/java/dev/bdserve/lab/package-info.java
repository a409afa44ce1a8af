/**
 * The research harness: the S-LoRA vs BD-LoRA study grid, its report and cost model ({@code lab.study}) and the
 * LoRA/BD-LoRA trainer ({@code lab.train}), run through the cli. It uses the serving runtime; the runtime never uses
 * it, nor its plotting and progress-bar libraries (ArchitectureTest enforces this).
 */
package dev.bdserve.lab;
