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

    @Test
    void aFileInsideAnAllowedFolderMayNotLinkOutside(@TempDir Path dir) throws Exception {
        Path allowed = java.nio.file.Files.createDirectories(dir.resolve("allowed"));
        Path outside = TestServer.synthAdapter(dir.resolve("outside"), 3, 0);
        Path a = java.nio.file.Files.createDirectories(allowed.resolve("a"));
        java.nio.file.Files.copy(outside.resolve("adapter_config.json"), a.resolve("adapter_config.json"));
        java.nio.file.Files.createSymbolicLink(a.resolve("adapter_model.safetensors"), outside.resolve("adapter_model.safetensors"));
        try (TestServer ts = new TestServer(1, TestServer.config(), o -> o.withAllowedLoraDirs(List.of(allowed)))) {
            assertError(ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"a\",\"lora_path\":\"" + a + "\"}"), 400,
                    "holds 'adapter_model.safetensors', which resolves outside the allowed adapter directories.");
            assertTrue(ts.engine.adapters().isEmpty());
            // a link that stays inside the allowed root is fine
            Path inside = TestServer.synthAdapter(allowed.resolve("inside"), 3, 0);
            java.nio.file.Files.delete(a.resolve("adapter_model.safetensors"));
            java.nio.file.Files.createSymbolicLink(a.resolve("adapter_model.safetensors"), inside.resolve("adapter_model.safetensors"));
            assertEquals(200, ts.post("/v1/load_lora_adapter", "{\"lora_name\":\"a\",\"lora_path\":\"" + a + "\"}").statusCode());
        }
    }

    @Test
    void registeredAdaptersAreCappedInCountAndBytes(@TempDir Path dir) {
        Path a = TestServer.synthAdapter(dir.resolve("a"), 1, 0), b = TestServer.synthAdapter(dir.resolve("b"), 2, 0),
                c = TestServer.synthAdapter(dir.resolve("c"), 3, 0);
        long one;
        try (var src = dev.bdserve.model.ModelFiles.open(dev.bdserve.TestModels.stories260K())) {
            one = dev.bdserve.lora.PeftAdapterLoader.load("a", a, src.config(), 64).bytes();
        }
        String load = "{\"lora_name\":\"%s\",\"lora_path\":\"%s\"}";
        try (TestServer ts = new TestServer(1, TestServer.config().withRegisteredLoraCaps(2, Long.MAX_VALUE), o -> o.withAllowedLoraDirs(List.of(dir)))) {
            assertEquals(200, ts.post("/v1/load_lora_adapter", load.formatted("a", a)).statusCode());
            assertEquals(200, ts.post("/v1/load_lora_adapter", load.formatted("b", b)).statusCode());
            assertError(ts.post("/v1/load_lora_adapter", load.formatted("c", c)), 400,
                    "Cannot load LoRA adapter 'c': 2 adapters are loaded, the most the server allows (--max-registered-loras 2); unload one first.");
            assertEquals(200, ts.post("/v1/unload_lora_adapter", "{\"lora_name\":\"a\"}").statusCode());
            assertEquals(200, ts.post("/v1/load_lora_adapter", load.formatted("c", c)).statusCode());
            assertEquals(200, ts.post("/v1/completions", "{\"model\":\"c\",\"prompt\":\"Once\",\"max_tokens\":2}").statusCode());
        }
        try (TestServer ts = new TestServer(1, TestServer.config().withRegisteredLoraCaps(100, one * 3 / 2), o -> o.withAllowedLoraDirs(List.of(dir)))) {
            assertEquals(200, ts.post("/v1/load_lora_adapter", load.formatted("a", a)).statusCode());
            assertError(ts.post("/v1/load_lora_adapter", load.formatted("b", b)), 400, "exceed the server's cap of " + one * 3 / 2 + " bytes");
            assertEquals(List.of("a"), ts.engine.adapters().stream().map(x -> x.name()).toList());
        }
    }
}
