package dev.bdserve.engine;

import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.LlamaConfig;

import java.nio.file.Path;

/** Reads and validates an adapter folder for a model; the engine calls it at registration and again after an eviction. */
@FunctionalInterface
public interface AdapterLoader {
    /** PEFT's layout ({@code adapter_config.json} and {@code adapter_model.safetensors}), plain or block-diagonal. */
    AdapterLoader PEFT = PeftAdapterLoader::load;

    LoraAdapter load(String name, Path dir, LlamaConfig model, int maxRank);
}
