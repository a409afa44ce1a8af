package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.EngineException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * /v1/load_lora_adapter and /v1/unload_lora_adapter in vLLM's shapes. Both are on only with allowed adapter directories
 * (vLLM gates both with one switch); adapters load only from under those directories, every file they read included.
 */
final class AdapterAdmin {
    private final ServingEngine engine;
    private final OpenAiServer.Options options;

    AdapterAdmin(ServingEngine engine, OpenAiServer.Options options) {
        this.engine = engine;
        this.options = options;
    }

    void load(ObjectNode b, Exchange ex) {
        if (!options.runtimeLoraUpdates())
            throw new ApiException(400, "InvalidUserInput", "Loading LoRA adapters at run time is disabled: start the server with --allowed-lora-dir DIR.", null);
        JsonNode nameN = b.get("lora_name"), pathN = b.get("lora_path");
        String name = nameN != null && nameN.isTextual() ? nameN.asText() : null;
        String path = pathN != null && pathN.isTextual() ? pathN.asText() : null;
        if (name == null || name.isEmpty() || path == null || path.isEmpty())
            throw new ApiException(400, "InvalidUserInput", "Both 'lora_name' and 'lora_path' must be provided.", null);
        if (name.equals(options.servedModelName()) || engine.adapters().stream().anyMatch(a -> a.name().equals(name)))
            throw new ApiException(400, "InvalidUserInput", "The lora adapter '" + name + "' has already been loaded.", null);
        Path dir = allowedAdapterPath(path);
        engine.registerAdapter(name, dir, false);   // EngineException 400 with the loader's message (or the duplicate message on a race)
        ex.text(200, "text/plain; charset=utf-8", "Success: LoRA adapter '" + name + "' added successfully.");
    }

    /**
     * The canonical adapter folder, if it lies under an allowed root both as written (no "..") and after
     * resolving symbolic links (no escape through a link).
     */
    private Path allowedAdapterPath(String path) {
        Path p;
        try {
            p = Path.of(path).toAbsolutePath().normalize();
        } catch (RuntimeException e) {
            throw new ApiException(400, "InvalidUserInput", "Invalid lora_path: " + e.getMessage(), null);
        }
        String outside = "The lora_path '" + path + "' is outside the allowed adapter directories.";
        if (options.allowedLoraDirs().stream().noneMatch(r -> p.startsWith(r.toAbsolutePath().normalize())))
            throw new ApiException(400, "InvalidUserInput", outside, null);
        Path real;
        try {
            real = p.toRealPath();
        } catch (NoSuchFileException e) {
            throw new ApiException(404, "NotFoundError", "Loading lora " + path + " failed: No adapter found for " + path, null);
        } catch (IOException e) {
            throw new ApiException(400, "InvalidUserInput", "Loading lora " + path + " failed: " + e.getMessage(), null);
        }
        if (!underRealRoot(real)) throw new ApiException(400, "InvalidUserInput", outside, null);
        if (Files.isDirectory(real)) {
            // the loader opens the files inside by name: each must resolve under a root too, or a link could escape
            try (Stream<Path> files = Files.list(real)) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    Path rf;
                    try {
                        rf = f.toRealPath();
                    } catch (IOException e) {
                        continue;                         // a dangling link: the loader cannot read it either
                    }
                    if (!underRealRoot(rf))
                        throw new ApiException(400, "InvalidUserInput", "The lora_path '" + path + "' holds '" + f.getFileName()
                                + "', which resolves outside the allowed adapter directories.", null);
                }
            } catch (IOException e) {
                throw new ApiException(400, "InvalidUserInput", "Loading lora " + path + " failed: " + e.getMessage(), null);
            }
        }
        return real;
    }

    /** Whether a real (link-free) path lies under the real path of an allowed root. */
    private boolean underRealRoot(Path real) {
        for (Path root : options.allowedLoraDirs()) {
            try {
                if (real.startsWith(root.toRealPath())) return true;
            } catch (IOException ignored) {
                // a root that does not exist allows nothing
            }
        }
        return false;
    }

    void unload(ObjectNode b, Exchange ex) {
        if (!options.runtimeLoraUpdates())
            throw new ApiException(400, "InvalidUserInput", "Unloading LoRA adapters at run time is disabled: start the server with --allowed-lora-dir DIR.", null);
        JsonNode nameN = b.get("lora_name");
        String name = nameN != null && nameN.isTextual() ? nameN.asText() : null;
        if (name == null || name.isEmpty())
            throw new ApiException(400, "InvalidUserInput", "either 'lora_name' and 'lora_int_id' needs to be provided.", null);
        if (engine.adapters().stream().noneMatch(a -> a.name().equals(name)))
            throw new ApiException(404, "NotFoundError", "The lora adapter '" + name + "' cannot be found.", null);
        try {
            engine.unregisterAdapter(name, options.unloadWait());
        } catch (EngineException e) {
            if (e.status() == 404) throw new ApiException(404, "NotFoundError", "The lora adapter '" + name + "' cannot be found.", null);
            throw e;
        }
        ex.text(200, "text/plain; charset=utf-8", "Success: LoRA adapter '" + name + "' removed successfully.");
    }
}
