package dev.bdserve.lab.train;

import dev.bdserve.TestModels;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.AdapterTools;
import dev.bdserve.lora.LoraAdapter;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.PeftAdapterLoader;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.tokenizer.Tokenizer;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The committed demo adapter adapters/caps-bdlora4 (trained by scripts/train-demo-adapters.sh): on held-out
 * prompts of its task it transforms ≥ 80% of the completions where the base model transforms ≤ 5%, served at
 * TP 1 and at TP 2 under bdlora; and it generates the same tokens at TP 1, at TP 2 under bdlora and densified
 * under slora at TP 2.
 */
class DemoAdapterTest {
    @TempDir Path tmp;

    private static List<String> prompts() throws Exception {
        return Files.readAllLines(Path.of("src/test/resources/train/caps-heldout-prompts.txt")).stream().filter(s -> !s.isBlank()).distinct().limit(8).toList();
    }

    private static List<String> complete(Path model, Tokenizer tok, int tp, LoraSharding sharding, Path adapter, List<String> prompts) {
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(model), new TpGroup.Options(tp, 1, sharding, LoraSharding.REPLICATED, 0))) {
            int id = -1;
            if (adapter != null) {
                LoraAdapter a = PeftAdapterLoader.load("demo", adapter, g.config(), 256);
                id = g.addAdapter(a);
                if (sharding == LoraSharding.BDLORA) assertEquals(LoraSharding.BDLORA, g.adapterSharding(id));
            }
            return SynthData.complete(g, tok, prompts, id, 32);
        }
    }

    @Test
    void capsAdapterTransformsHeldOutPromptsAtTp1AndTp2() throws Exception {
        Path model = TestModels.stories260K();
        Path adapter = Path.of("adapters/caps-bdlora4");
        Tokenizer tok = Tokenizers.load(model);
        List<String> prompts = prompts();
        double base = SynthTask.CAPS.score(complete(model, tok, 1, LoraSharding.AUTO, null, prompts)).accuracy();
        List<String> tp1 = complete(model, tok, 1, LoraSharding.AUTO, adapter, prompts);
        List<String> tp2 = complete(model, tok, 2, LoraSharding.BDLORA, adapter, prompts);
        assertTrue(base <= 0.05, "base model caps accuracy " + base);
        assertTrue(SynthTask.CAPS.score(tp1).accuracy() >= 0.8, "TP 1: " + SynthTask.CAPS.score(tp1).detail());
        assertTrue(SynthTask.CAPS.score(tp2).accuracy() >= 0.8, "TP 2 bdlora: " + SynthTask.CAPS.score(tp2).detail());
        assertEquals(tp1, tp2, "TP 2 under bdlora generates what TP 1 does");
        Path dense = tmp.resolve("dense");
        AdapterTools.densify(adapter, dense);
        List<String> slora = complete(model, tok, 2, LoraSharding.SLORA, dense, prompts.subList(0, 4));
        assertEquals(tp1.subList(0, 4), slora, "the densified adapter under slora at TP 2 generates the same");
    }
}
