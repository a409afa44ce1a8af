/**
 * Tokenizers: {@link dev.bdserve.tokenizer.Tokenizer} (the interface the engine uses),
 * {@link dev.bdserve.tokenizer.Llama2cTokenizer} (llama2.c {@code tokenizer.bin}, pure Java),
 * {@link dev.bdserve.tokenizer.HfTokenizer} (Hugging Face {@code tokenizer.json} through DJL's binding of the Rust
 * tokenizers library), {@link dev.bdserve.tokenizer.HfTokenizerJsonWriter} (llama2.c → tokenizer.json conversion),
 * {@link dev.bdserve.tokenizer.GgufTokenizers} (GGUF {@code tokenizer.ggml.*} metadata, read and written: SentencePiece
 * and byte-level BPE vocabularies) and {@link dev.bdserve.tokenizer.Tokenizers#load} (finds the tokenizer of a model
 * folder, checkpoint or GGUF file).
 *
 * <p>For generated text use a {@link dev.bdserve.tokenizer.Tokenizer.StreamDecoder} per sequence: it keeps
 * the leading space of the first generated token (only a token right after BOS loses it, as in llama2.c, and only in
 * vocabularies that prepend a dummy space: not Gemma's) and holds back bytes of characters split across tokens.
 */
package dev.bdserve.tokenizer;
