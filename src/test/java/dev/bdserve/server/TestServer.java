package dev.bdserve.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import dev.bdserve.TestModels;
import dev.bdserve.engine.Engine;
import dev.bdserve.engine.EngineConfig;
import dev.bdserve.engine.ModelRunner;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.lora.LoraSharding;
import dev.bdserve.lora.SynthAdapter;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.tensor.DType;
import dev.bdserve.tokenizer.Tokenizers;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.UnaryOperator;

/** The server in-process on an ephemeral port over the real stories260K model (TP 1 or 2, threads transport). */
final class TestServer implements AutoCloseable {
    static final String MODEL = "stories260K";

    final TpGroup runner;
    final Engine engine;
    final OpenAiServer server;
    final ByteArrayOutputStream accessLog = new ByteArrayOutputStream();
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    TestServer(int tp, EngineConfig ec, UnaryOperator<OpenAiServer.Options> custom) { this(tp, ec, custom, r -> r); }

    TestServer(int tp, EngineConfig ec, UnaryOperator<OpenAiServer.Options> custom, UnaryOperator<ModelRunner> engineRunner) {
        this(tp, LoraSharding.AUTO, ec, custom, engineRunner);
    }

    /** {@code engineRunner} wraps the group the engine drives (to pace or break its steps); {@link #runner} stays the group itself. */
    TestServer(int tp, LoraSharding sharding, EngineConfig ec, UnaryOperator<OpenAiServer.Options> custom, UnaryOperator<ModelRunner> engineRunner) {
        this(TestModels.stories260K(), tp, sharding, ec, custom, engineRunner);
    }

    /** A server on another model file (a GGUF file of stories260K, say). */
    TestServer(Path bin, int tp, LoraSharding sharding, EngineConfig ec, UnaryOperator<OpenAiServer.Options> custom,
               UnaryOperator<ModelRunner> engineRunner) {
        TpGroup.Options o = new TpGroup.Options(tp, 1, sharding, LoraSharding.REPLICATED, 0).withKvCache(ec.kvCacheBytes(), ec.blockSize());
        runner = TpGroup.threads(() -> ModelFiles.open(bin), o);
        engine = new Engine(engineRunner.apply(runner), Tokenizers.load(bin), ec);
        OpenAiServer.Options so = custom.apply(OpenAiServer.Options.defaults(MODEL)
                .withAccessLog(new PrintStream(accessLog, true, StandardCharsets.UTF_8)));
        server = new OpenAiServer(ServingEngine.of(engine), so).start();
    }

    TestServer(int tp) { this(tp, config(), o -> o); }

    static EngineConfig config() { return new EngineConfig(64, 512, 8, 32, 64, 64L << 20, 16, 4096, true); }

    String base() { return "http://127.0.0.1:" + server.port(); }

    OpenAIClient client() { return client(null); }

    OpenAIClient client(String key) {
        return OpenAIOkHttpClient.builder().baseUrl(base() + "/v1").apiKey(key == null ? "none" : key).maxRetries(0)
                .timeout(Duration.ofSeconds(60)).build();
    }

    /** A raw POST; returns status and body. */
    HttpResponse<String> post(String path, String body) { return post(path, body.getBytes(StandardCharsets.UTF_8), null); }

    HttpResponse<String> post(String path, byte[] body, String key) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base() + path)).timeout(Duration.ofSeconds(60))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(body));
            if (key != null) b.header("Authorization", "Bearer " + key);
            return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError("POST " + path + " failed: " + e, e);
        }
    }

    HttpResponse<String> get(String path) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create(base() + path)).timeout(Duration.ofSeconds(30)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError("GET " + path + " failed: " + e, e);
        }
    }

    /** Writes a synthetic PEFT adapter (visible effect on the output) into dir. */
    static Path synthAdapter(Path dir, long seed, int nblocks) {
        try (var src = ModelFiles.open(TestModels.stories260K())) {
            new SynthAdapter(8, nblocks, SynthAdapter.allModules(), DType.F32, 16, false, 0.5, seed).write(dir, src.config(), MODEL);
        }
        return dir;
    }

    @Override
    public void close() {
        server.close();
        engine.close();
        runner.close();
    }
}
