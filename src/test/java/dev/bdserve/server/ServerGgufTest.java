package dev.bdserve.server;

import com.openai.models.completions.CompletionCreateParams;
import dev.bdserve.TestModels;
import dev.bdserve.lora.LoraSharding;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The server on a GGUF file, through the OpenAI client: the base model and a PEFT adapter (HF row order, applied to
 * the q/k rows llama.cpp permuted) answer with the same text as on the llama2.c checkpoint the file was written from,
 * at TP 1 and 2.
 */
class ServerGgufTest {
    @TempDir Path dir;

    @Test
    void aGgufModelServesItsAdaptersAsTheCheckpointItCameFrom() {
        Path bin = TestModels.stories260K(), gguf = dev.bdserve.model.gguf.GgufTestFiles.stories260KGguf(dir.resolve("stories260K.gguf"));
        Path adapter = TestServer.synthAdapter(dir.resolve("adapters").resolve("a"), 3, 0);
        for (int tp : new int[]{1, 2}) {
            List<String> want = texts(bin, tp, adapter), got = texts(gguf, tp, adapter);
            assertEquals(want, got, "TP " + tp);
            assertNotEquals(got.get(0), got.get(1), "the adapter changes the text");
        }
    }

    /** The base model's and the adapter's greedy texts for one prompt. */
    private List<String> texts(Path model, int tp, Path adapter) {
        try (TestServer ts = new TestServer(model, tp, LoraSharding.AUTO, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(dir)), r -> r)) {
            assertEquals(200, ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"a\",\"lora_path\":\"" + adapter + "\"}").statusCode());
            return List.of(TestServer.MODEL, "a").stream().map(m -> ts.client().completions().create(CompletionCreateParams.builder()
                    .model(m).prompt("Once upon a time").maxTokens(24).temperature(0).build()).choices().getFirst().text()).toList();
        }
    }

    /**
     * The README's command as a user runs it: {@code ./bdserve serve --model some.gguf --lora-modules a=PEFT_DIR} in its
     * own process answers the OpenAI client for the base model and the adapter with the texts the same file and adapter
     * give in-process.
     */
    @Test
    void theReadmeCommandServesAGgufWithAnAdapterModule() throws Exception {
        Path gguf = dev.bdserve.model.gguf.GgufTestFiles.stories260KGguf(dir.resolve("stories260K.gguf"));
        Path adapter = TestServer.synthAdapter(dir.resolve("adapters").resolve("a"), 3, 0);
        List<String> want = texts(gguf, 1, adapter);
        Path log = dir.resolve("serve.log");
        List<String> cmd = new java.util.ArrayList<>(dev.bdserve.ChildJvm.mainCommand("-Xmx512m"));
        cmd.addAll(List.of("serve", "--model", gguf.toString(), "--lora-modules", "a=" + adapter, "--served-model-name", TestServer.MODEL,
                "--port", "0", "--kv-cache-gb", "0.0625", "--threads", "1", "--disable-log-requests"));
        Process p = new ProcessBuilder(cmd)
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            java.util.regex.Matcher m = ServerMpiTest.awaitServing(p, log);
            assertNotNull(m, "the server did not start:\n" + java.nio.file.Files.readString(log));
            com.openai.client.OpenAIClient client = com.openai.client.okhttp.OpenAIOkHttpClient.builder()
                    .baseUrl("http://127.0.0.1:" + m.group(2) + "/v1").apiKey("none").maxRetries(0).timeout(java.time.Duration.ofSeconds(60)).build();
            assertEquals(List.of(TestServer.MODEL, "a"), client.models().list().data().stream().map(x -> x.id()).toList());
            List<String> got = List.of(TestServer.MODEL, "a").stream().map(model -> client.completions().create(CompletionCreateParams.builder()
                    .model(model).prompt("Once upon a time").maxTokens(24).temperature(0).build()).choices().getFirst().text()).toList();
            assertEquals(want, got);
            assertNotEquals(got.get(0), got.get(1), "the adapter changes the text");
        } finally {
            p.destroy();
            if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) p.destroyForcibly();
        }
    }
}
