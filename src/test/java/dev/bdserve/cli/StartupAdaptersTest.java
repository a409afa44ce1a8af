package dev.bdserve.cli;

import dev.bdserve.TestModels;
import dev.bdserve.engine.Engine;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.ModelShapes;
import dev.bdserve.server.ServingEngine;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** `serve`'s start-up adapters: shipped ones that do not fit the model are skipped, asked-for ones stop the start. */
class StartupAdaptersTest {
    @Test
    void shippedAdaptersThatDoNotFitAreSkippedAndAskedForOnesFail(@TempDir Path tmp) throws Exception {
        Path bin = TestModels.stories260K();
        Path fits = tmp.resolve("fits"), other = tmp.resolve("other");
        try (var src = ModelFiles.open(bin)) {
            new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 8, false, 0.5, 1).write(fits, src.config(), "stories260K");
        }
        new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 8, false, 0.5, 2).write(other, ModelShapes.get("llama-160m"), "llama-160m");
        EngineConfig ec = new EngineConfig(8, 256, 4, 8, 64, 16L << 20, 16, 64, true);
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(bin), TpGroup.Options.single(1).withKvCache(ec.kvCacheBytes(), ec.blockSize()));
             Engine engine = new Engine(g, Tokenizers.load(bin), ec)) {
            ServingEngine se = ServingEngine.of(engine);
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            PrintStream err = new PrintStream(log, true, StandardCharsets.UTF_8);
            List<String[]> modules = List.of(new String[]{"fits", fits.toString()}, new String[]{"other", other.toString()});

            assertEquals(1, ServeCommand.registerStartupAdapters(se, modules, true, err));
            String out = log.toString(StandardCharsets.UTF_8);
            assertTrue(out.contains("bdserve: adapter fits from"), out);
            assertTrue(out.contains("not serving shipped adapter other: Failed to load LoRA adapter 'other'") && out.contains("adapter_model.safetensors"), out);
            assertEquals(List.of("fits"), se.adapters().stream().map(a -> a.name()).toList());

            RuntimeException e = assertThrows(RuntimeException.class,
                    () -> ServeCommand.registerStartupAdapters(se, List.<String[]>of(new String[]{"other2", other.toString()}), false, err));
            assertTrue(e.getMessage().contains("other2") && e.getMessage().contains("adapter_model.safetensors"), e.getMessage());
        }
    }

    /**
     * `serve --tp 2 --lora-sharding bdlora` with a dense adapter asked for: the start stops with exit 2 and the message
     * naming the adapter, the reason and the fix; a shipped one is skipped with the same message instead.
     */
    @Test
    void anAdapterTheShardingCannotRunStopsTheStart(@TempDir Path tmp) throws Exception {
        Path bin = TestModels.stories260K(), dense = tmp.resolve("dense-r4");
        try (var src = ModelFiles.open(bin)) {
            new SynthAdapter(4, 0, SynthAdapter.allModules(), DType.F32, 8, false, 0.5, 1).write(dense, src.config(), "stories260K");
        }
        String why = "Failed to load LoRA adapter 'dense': adapter dense cannot use bdlora sharding at TP 2: not a BD-LoRA adapter; "
                + "to serve it, run with --lora-sharding auto --lora-fallback replicated (or slora)";
        java.io.StringWriter err = new java.io.StringWriter();
        int[] code = {-1};
        Thread serve = Thread.ofPlatform().daemon().start(() -> {
            picocli.CommandLine cl = Main.commandLine();
            cl.setErr(new java.io.PrintWriter(err, true));
            code[0] = cl.execute("serve", "--model", bin.toString(), "--tp", "2", "--lora-sharding", "bdlora", "--lora-modules", "dense=" + dense,
                    "--port", "0", "--kv-cache-gb", "0.01", "--disable-log-requests");
        });
        serve.join(120_000);
        assertFalse(serve.isAlive(), "the server started instead of refusing the adapter: " + err);
        assertEquals(2, code[0], err.toString());
        assertTrue(err.toString().contains("bdserve: " + why), err.toString());

        EngineConfig ec = new EngineConfig(8, 256, 4, 8, 64, 16L << 20, 16, 64, true);
        var o = new TpGroup.Options(2, 1, dev.bdserve.lora.LoraSharding.BDLORA, dev.bdserve.lora.LoraSharding.REPLICATED, 0)
                .withKvCache(ec.kvCacheBytes(), ec.blockSize());
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(bin), o); Engine engine = new Engine(g, Tokenizers.load(bin), ec)) {
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            PrintStream shippedErr = new PrintStream(log, true, StandardCharsets.UTF_8);
            assertEquals(0, ServeCommand.registerStartupAdapters(ServingEngine.of(engine), List.<String[]>of(new String[]{"dense", dense.toString()}), true, shippedErr));
            assertTrue(log.toString(StandardCharsets.UTF_8).contains("not serving shipped adapter dense: " + why), log.toString(StandardCharsets.UTF_8));
        }
    }
}
