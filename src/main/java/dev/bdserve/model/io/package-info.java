/**
 * Model file formats: {@link dev.bdserve.model.io.Safetensors} (strict, memory-mapped reader) and
 * {@link dev.bdserve.model.io.SafetensorsWriter}; {@link dev.bdserve.model.io.HfConfigIO} (config.json);
 * {@link dev.bdserve.model.io.HfModelSource} (HF folder, single file or sharded, validated against the
 * config) and {@link dev.bdserve.model.io.HfModelWriter}; {@link dev.bdserve.model.io.Llama2cCheckpoint}
 * (llama2.c .bin, q/k rows permuted to HF rotate-half layout). All malformed input is reported as a
 * {@link dev.bdserve.model.ModelFormatException} naming the file, the tensor and the problem.
 */
package dev.bdserve.model.io;
