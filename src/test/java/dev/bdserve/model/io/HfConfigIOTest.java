package dev.bdserve.model.io;

import dev.bdserve.model.DecoderVariant;
import dev.bdserve.model.LlamaConfig;
import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class HfConfigIOTest {
    @TempDir Path dir;

    static final String LLAMA32_1B = """
            {
              "architectures": ["LlamaForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 128000,
              "eos_token_id": [128001, 128008, 128009],
              "head_dim": 64,
              "hidden_act": "silu",
              "hidden_size": 2048,
              "initializer_range": 0.02,
              "intermediate_size": 8192,
              "max_position_embeddings": 131072,
              "mlp_bias": false,
              "model_type": "llama",
              "num_attention_heads": 32,
              "num_hidden_layers": 16,
              "num_key_value_heads": 8,
              "pretraining_tp": 1,
              "rms_norm_eps": 1e-05,
              "rope_scaling": {
                "factor": 32.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3"
              },
              "rope_theta": 500000.0,
              "tie_word_embeddings": true,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.45.0.dev0",
              "use_cache": true,
              "vocab_size": 128256
            }
            """;

    static final String MINIMAL = """
            {"model_type": "llama", "vocab_size": 100, "hidden_size": 16, "intermediate_size": 40,
             "num_hidden_layers": 2, "num_attention_heads": 4}
            """;

    @Test
    void parsesLlama32() {
        LlamaConfig c = HfConfigIO.parse(LLAMA32_1B, "config.json");
        assertEquals(128256, c.vocabSize());
        assertEquals(2048, c.hiddenSize());
        assertEquals(8192, c.intermediateSize());
        assertEquals(16, c.numLayers());
        assertEquals(32, c.numHeads());
        assertEquals(8, c.numKvHeads());
        assertEquals(64, c.headDim());
        assertEquals(131072, c.maxPositions());
        assertEquals(1e-5f, c.rmsNormEps());
        assertEquals(500000.0, c.ropeTheta());
        assertEquals(new LlamaConfig.RopeScaling.Llama3(32, 1, 4, 8192), c.ropeScaling());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(128000, c.bosTokenId());
        assertEquals(List.of(128001, 128008, 128009), c.eosTokenIds());
        assertEquals("bfloat16", c.torchDtype());
    }

    @Test
    void defaults() {
        LlamaConfig c = HfConfigIO.parse(MINIMAL, "config.json");
        assertEquals(4, c.numKvHeads());
        assertEquals(4, c.headDim());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(2048, c.maxPositions());
        assertEquals(1e-6f, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertNull(c.ropeScaling());
        assertEquals(1, c.bosTokenId());
        assertEquals(List.of(2), c.eosTokenIds());
        assertEquals("float32", c.torchDtype());
    }

    @Test
    void writeThenReadIsIdentity() throws Exception {
        for (String json : List.of(LLAMA32_1B, MINIMAL)) {
            LlamaConfig c = HfConfigIO.parse(json, "config.json");
            Path p = dir.resolve("config.json");
            HfConfigIO.write(c, p);
            assertEquals(c, HfConfigIO.read(p));
            String text = Files.readString(p);
            assertTrue(text.contains("\"hidden_act\" : \"silu\""), text);
            assertTrue(text.contains("\"model_type\" : \"llama\""), text);
            assertTrue(text.contains("\"LlamaForCausalLM\""), text);
        }
        LlamaConfig c = HfConfigIO.parse(LLAMA32_1B, "x");
        assertTrue(HfConfigIO.toJson(c).contains("\"rms_norm_eps\" : 1.0E-5"), HfConfigIO.toJson(c));
    }

    @Test
    void ropeDefaultTypeIsNone() {
        String j = MINIMAL.replace("\"model_type\"", "\"rope_scaling\": {\"rope_type\": \"default\"}, \"model_type\"");
        assertNull(HfConfigIO.parse(j, "config.json").ropeScaling());
        String old = MINIMAL.replace("\"model_type\"", "\"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, "
                + "\"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}, \"model_type\"");
        assertEquals(new LlamaConfig.RopeScaling.Llama3(8, 1, 4, 8192), HfConfigIO.parse(old, "config.json").ropeScaling());
    }

    @Test
    void ropeParametersTransformers5() {
        String j = MINIMAL.replace("\"model_type\"", "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 500000.0}, \"model_type\"");
        LlamaConfig c = HfConfigIO.parse(j, "config.json");
        assertEquals(500000.0, c.ropeTheta());
        assertNull(c.ropeScaling());
    }

    @Test
    void singleEosAndNullBos() {
        String j = MINIMAL.replace("\"model_type\"", "\"eos_token_id\": 7, \"bos_token_id\": null, \"model_type\"");
        LlamaConfig c = HfConfigIO.parse(j, "config.json");
        assertEquals(List.of(7), c.eosTokenIds());
        assertEquals(-1, c.bosTokenId());
        assertEquals(c, HfConfigIO.parse(HfConfigIO.toJson(c), "again"));
    }

    void fails(String json, String expected) {
        var e = assertThrows(ModelFormatException.class, () -> HfConfigIO.parse(json, "/m/config.json"));
        assertTrue(e.getMessage().startsWith("/m/config.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void errors() {
        fails("{", "not valid JSON");
        fails("[]", "not a JSON object");
        fails(MINIMAL.replace("\"vocab_size\": 100,", ""), "missing required key \"vocab_size\"");
        fails(MINIMAL.replace("\"hidden_size\": 16", "\"hidden_size\": \"16\""), "\"hidden_size\" must be an integer, got \"16\"");
        fails(MINIMAL.replace("\"hidden_size\": 16", "\"hidden_size\": 16.5"), "\"hidden_size\" must be an integer, got 16.5");
        fails(MINIMAL.replace("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\", \"architectures\": [\"GPT2LMHeadModel\"]"),
                "unsupported model: architectures [GPT2LMHeadModel], model_type \"gpt2\" (expected one of [LlamaForCausalLM, Qwen2ForCausalLM");
        fails(MINIMAL.replace("\"model_type\": \"llama\",", ""), "neither \"architectures\" nor \"model_type\" identifies the model");
        fails(MINIMAL.replace("\"model_type\"", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}, \"model_type\""),
                "\"rope_scaling\" rope_type \"yarn\" is not supported (only \"llama3\", \"longrope\" and \"default\")");
        fails(MINIMAL.replace("\"model_type\"", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4}, \"model_type\""),
                "\"rope_scaling\" (llama3) is missing \"low_freq_factor\"");
        fails(MINIMAL.replace("\"model_type\"", "\"hidden_act\": \"gelu\", \"model_type\""), "\"hidden_act\" is \"gelu\"; only \"silu\" is supported");
        fails(MINIMAL.replace("\"model_type\"", "\"attention_bias\": true, \"model_type\""), "\"attention_bias\": true is not supported");
        fails(MINIMAL.replace("\"model_type\"", "\"num_key_value_heads\": 3, \"model_type\""),
                "num_key_value_heads (3) must divide num_attention_heads (4)");
        fails(MINIMAL.replace("\"hidden_size\": 16", "\"hidden_size\": 18"), "\"head_dim\" is absent and hidden_size 18 is not divisible by num_attention_heads 4");
        fails(MINIMAL.replace("\"model_type\"", "\"eos_token_id\": [1, \"x\"], \"model_type\""), "\"eos_token_id\" must be an integer, got \"x\"");
        fails(MINIMAL.replace("\"model_type\"", "\"eos_token_id\": 500, \"model_type\""), "eos_token_id 500 outside the vocabulary");
        fails(MINIMAL.replace("\"model_type\"", "\"tie_word_embeddings\": 1, \"model_type\""), "\"tie_word_embeddings\" must be true or false, got 1");
    }

    static final String QWEN25_05B = """
            {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
             "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
             "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 14,
             "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
             "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.43.1",
             "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
            """;

    static final String QWEN3_06B = """
            {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643,
             "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024, "initializer_range": 0.02,
             "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
             "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
             "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
             "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false,
             "vocab_size": 151936}
            """;

    static final String MISTRAL_7B_V01 = """
            {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
             "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
             "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
             "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
             "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000}
            """;

    /** Qwen2.5, Qwen3 and Mistral configs as published read into their variants, and survive a write and read. */
    @Test
    void parsesQwenAndMistral() {
        LlamaConfig q2 = HfConfigIO.parse(QWEN25_05B, "config.json");
        assertEquals(DecoderVariant.qwen2(0), q2.variant());
        assertEquals(64, q2.headDim());
        assertEquals(151936, q2.vocabSize());
        assertTrue(q2.tieWordEmbeddings());
        LlamaConfig q3 = HfConfigIO.parse(QWEN3_06B, "config.json");
        assertEquals(DecoderVariant.qwen3(0), q3.variant());
        assertEquals(128, q3.headDim());                                  // not 1024 / 16
        assertEquals(2048, q3.qDim());
        LlamaConfig m = HfConfigIO.parse(MISTRAL_7B_V01, "config.json");
        assertEquals(DecoderVariant.mistral(4096), m.variant());
        assertEquals(0, HfConfigIO.parse(MISTRAL_7B_V01.replace("\"sliding_window\": 4096", "\"sliding_window\": null"), "c").variant().slidingWindow());
        assertEquals(128, HfConfigIO.parse(QWEN3_06B.replace("\"head_dim\": 128, ", ""), "c").headDim());
        // every layer sliding (max_window_layers 0) is one window for all
        assertEquals(DecoderVariant.qwen2(32768), HfConfigIO.parse(QWEN25_05B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true")
                .replace("\"max_window_layers\": 21", "\"max_window_layers\": 0"), "c").variant());
        // max_window_layers >= layers: no layer slides
        assertEquals(0, HfConfigIO.parse(QWEN3_06B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true"), "c").variant().slidingWindow());
        for (LlamaConfig c : new LlamaConfig[]{q2, q3, m, m.withVariant(DecoderVariant.mistral(0)), q2.withVariant(DecoderVariant.qwen2(7))})
            assertEquals(c, HfConfigIO.parse(HfConfigIO.toJson(c), "again"), c.variant().toString());
        assertTrue(HfConfigIO.toJson(q3).contains("\"Qwen3ForCausalLM\""));
    }

    @Test
    void refusesWhatQwenAndMistralDoNotRun() {
        fails(QWEN25_05B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true"),
                "sliding-window attention on 3 of 24 layers (use_sliding_window with max_window_layers 21, or layer_types) is not supported");
        fails(QWEN3_06B.replace("\"attention_bias\": false", "\"attention_bias\": true"), "\"attention_bias\": true is not supported (qwen3");
        fails(QWEN3_06B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true").replace("\"max_window_layers\": 28", "\"max_window_layers\": 0"),
                "28 layers use sliding-window attention but \"sliding_window\" is absent or null");
        fails(QWEN25_05B.replace("\"model_type\": \"qwen2\"", "\"model_type\": \"qwen2_moe\"").replace("Qwen2ForCausalLM", "Qwen2MoeForCausalLM"),
                "mixture-of-experts models are not supported: architectures [Qwen2MoeForCausalLM], model_type \"qwen2_moe\"");
        fails(MISTRAL_7B_V01.replace("\"model_type\": \"mistral\"", "\"model_type\": \"mixtral\"").replace("MistralForCausalLM", "MixtralForCausalLM"),
                "mixture-of-experts models are not supported");
        fails(QWEN25_05B.replace("\"model_type\": \"qwen2\"", "\"model_type\": \"qwen2_vl\"").replace("Qwen2ForCausalLM", "Qwen2VLForConditionalGeneration"),
                "vision-language models are not supported");
        fails(QWEN25_05B.replace("\"rope_theta\"", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}, \"rope_theta\""),
                "\"rope_scaling\" rope_type \"yarn\" is not supported");
        fails(MISTRAL_7B_V01.replace("\"sliding_window\": 4096", "\"sliding_window\": -1"), "\"sliding_window\" must be positive or null, got -1");
        fails(MISTRAL_7B_V01.replace("\"rope_theta\"", "\"layer_types\": [\"full_attention\"], \"rope_theta\""),
                "\"layer_types\" must be a list of 32 strings");
    }

    @Test
    void missingFile() {
        var e = assertThrows(ModelFormatException.class, () -> HfConfigIO.read(dir.resolve("config.json")));
        assertTrue(e.getMessage().endsWith("config.json: file not found"), e.getMessage());
    }
}
