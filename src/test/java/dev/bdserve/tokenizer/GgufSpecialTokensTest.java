package dev.bdserve.tokenizer;

import dev.bdserve.model.gguf.GgufTestFiles;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * bdserve's tokenizer of a GGUF vocabulary adds BOS and EOS where llama.cpp's does: llama.cpp's vocabulary files
 * as they are (they rely on the defaults: BOS for llama-spm and llama-bpe, none for qwen2 and gpt-2) and with
 * {@code tokenizer.ggml.add_bos_token} / {@code add_eos_token} set, loaded by llama.cpp itself through node.
 */
class GgufSpecialTokensTest {
    @TempDir Path dir;

    static final List<String> TEXTS = List.of("Hello world", "", " ", "  leading and trailing  ", "x\n\n\ty  z",
            "Ünïcödé 東京 🦙 naïve — “quotes”", "numbers 1234567 and 3.14159", "it's don't WE'RE", "end with newline\n");
    /** Byte-level vocabularies: special tokens inside the texts too (never first: see {@code noSecondBos}). */
    static final List<String> BPE_EXTRA = List.of("a <|endoftext|> b", "x<|end_of_text|>", "hi <|begin_of_text|>",
            "<b><|im_start|>user\nhi<|im_end|>\n");

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("llama-spm", Map.of(), true, false),
                Arguments.of("llama-spm", Map.of("tokenizer.ggml.add_bos_token", false, "tokenizer.ggml.add_eos_token", true), false, true),
                Arguments.of("llama-bpe", Map.of(), true, false),
                Arguments.of("llama-bpe", Map.of("tokenizer.ggml.add_bos_token", false), false, false),
                Arguments.of("llama-bpe", Map.of("tokenizer.ggml.add_eos_token", true), true, true),
                Arguments.of("llama-bpe", Map.of("tokenizer.ggml.pre", "llama3"), true, false),       // llama.cpp's other names
                Arguments.of("llama-bpe", Map.of("tokenizer.ggml.pre", "llama-v3"), true, false),
                Arguments.of("qwen2", Map.of(), false, false),
                Arguments.of("qwen2", Map.of("tokenizer.ggml.add_bos_token", true, "tokenizer.ggml.add_eos_token", true), true, true),
                Arguments.of("gpt-2", Map.of(), false, false),
                Arguments.of("gpt-2", Map.of("tokenizer.ggml.pre", "llama-bpe"), true, false));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void addsBosAndEosAsLlamaCpp(String vocab, Map<String, Object> changes, boolean addBos, boolean addEos) throws Exception {
        Path gguf = GgufTestFiles.vocab(vocab);
        if (!changes.isEmpty()) gguf = LlamaCppVocab.rewrite(gguf, dir.resolve(vocab + "-changed.gguf"), new HashMap<>(changes));
        Tokenizer t = Tokenizers.load(gguf);
        List<String> texts = new ArrayList<>(TEXTS);
        if (!vocab.equals("llama-spm")) texts.addAll(BPE_EXTRA);           // llama2.c's tokenizer parses no special tokens
        LlamaCppVocab.Result r = LlamaCppVocab.tokenize(gguf, t.vocabSize(), texts);
        assertEquals(List.of(addBos, addEos), List.of(r.addBos(), r.addEos()), "llama.cpp's add_bos, add_eos");
        assertEquals(r.bos(), t.bosId(), "BOS");
        assertEquals(r.eos(), t.eosIds()[0], "EOS");
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            int[] special = t.encode(texts.get(i), true), plain = t.encode(texts.get(i), false);
            if (!Arrays.equals(r.withSpecials(i), special) || !Arrays.equals(r.tokens().get(i), plain))
                failures.add("'" + texts.get(i).replace("\n", "\\n") + "': llama.cpp " + Arrays.toString(r.withSpecials(i))
                        + ", bdserve " + Arrays.toString(special) + " (without specials " + Arrays.toString(plain) + ")");
        }
        assertEquals(List.of(), failures);
    }
}
