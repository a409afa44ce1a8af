/**
 * GGUF, llama.cpp's model file format: {@link dev.bdserve.model.gguf.GgufFile} (strict, memory-mapped reader of
 * versions 2 and 3: typed metadata, tensor infos, tensor data as {@link java.lang.foreign.MemorySegment} slices),
 * {@link dev.bdserve.model.gguf.GgufWriter} (version 3 writer), {@link dev.bdserve.model.gguf.GgmlType} (the
 * tensor types bdserve reads, with their block layout) and {@link dev.bdserve.model.gguf.GgufValueType} (the
 * metadata value types). {@link dev.bdserve.model.gguf.GgmlCodec} quantizes and dequantizes every type as ggml's
 * reference code does, {@link dev.bdserve.model.gguf.GgufRecipe} picks each tensor's type as llama-quantize's
 * recipes do, and {@link dev.bdserve.model.gguf.QuantizingSource} applies a recipe to a float model as it loads.
 * Malformed files are reported as a {@link dev.bdserve.model.ModelFormatException} naming
 * the file and the key or tensor.
 */
package dev.bdserve.model.gguf;
