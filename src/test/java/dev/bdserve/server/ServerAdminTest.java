package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static dev.bdserve.server.ServerApiTest.JSON;
import static dev.bdserve.server.ServerApiTest.assertError;
import static org.junit.jupiter.api.Assertions.*;

/** The admin routes: both gated by --allowed-lora-dir, both refused while draining, paths in /v1/models only when asked. */
class ServerAdminTest {

    @Test
    void unloadIsDisabledLikeLoadWithoutAllowedDirs(@TempDir Path dir) {
        Path a = TestServer.synthAdapter(dir.resolve("a"), 1, 0);
        try (TestServer ts = new TestServer(1)) {
            ts.engine.registerAdapter("startup", a, false);
            assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"x\",\"lora_path\":\"" + a + "\"}"), 400,
                    "Loading LoRA adapters at run time is disabled: start the server with --allowed-lora-dir DIR.");
            assertError(ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"startup\"}"), 400,
                    "Unloading LoRA adapters at run time is disabled: start the server with --allowed-lora-dir DIR.");
            assertEquals(1, ts.engine.adapters().size(), "the startup adapter stays");
            assertEquals(200, ts.post("/v1/completions", "{\"model\":\"startup\",\"prompt\":\"Once\",\"max_tokens\":2}").statusCode());
        }
    }

    @Test
    void drainingAnswers503OnHealthAndRefusesLoadAndUnload(@TempDir Path dir) {
        Path a = TestServer.synthAdapter(dir.resolve("a"), 1, 0), b = TestServer.synthAdapter(dir.resolve("b"), 2, 0);
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(dir)))) {
            assertEquals(200, ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"a\",\"lora_path\":\"" + a + "\"}").statusCode());
            assertEquals(200, ts.get("/health").statusCode());
            ts.server.stopAdmitting();
            assertError(ts.get("/health"), 503, "The server is shutting down.");
            assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"b\",\"lora_path\":\"" + b + "\"}"), 503, "The server is shutting down.");
            assertError(ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"a\"}"), 503, "The server is shutting down.");
            assertEquals(List.of("a"), ts.engine.adapters().stream().map(x -> x.name()).toList());
            assertEquals(200, ts.get("/metrics").statusCode(), "metrics stay readable while draining");
        }
    }

    @Test
    void modelsShowsPathsOnlyWhenAsked(@TempDir Path dir) throws Exception {
        Path a = TestServer.synthAdapter(dir.resolve("secret-folder"), 1, 0);
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o)) {
            ts.engine.registerAdapter("a", a, false);
            String body = ts.get("/v1/models").body();
            assertFalse(body.contains("secret-folder") || body.contains(dir.toString()), body);
            JsonNode data = JSON.readTree(body).get("data");
            assertEquals(TestServer.MODEL, data.get(0).get("root").asText());
            assertEquals("a", data.get(1).get("root").asText());
        }
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withShowPaths(true))) {
            ts.engine.registerAdapter("a", a, false);
            JsonNode data = JSON.readTree(ts.get("/v1/models").body()).get("data");
            assertEquals(a.toString(), data.get(1).get("root").asText());
        }
    }
}
