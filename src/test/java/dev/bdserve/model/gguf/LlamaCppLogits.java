package dev.bdserve.model.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.engine.BlockManager;
import dev.bdserve.engine.StepBatch;
import dev.bdserve.engine.TpGroup;
import dev.bdserve.model.ModelFiles;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Next-token logits of llama.cpp and of bdserve for the same token sequence. llama.cpp's come from the test resource
 * {@code llamacpp_logits.mjs} under node (node-llama-cpp's prebuilt library): a greedy continuation with the raw
 * logits of every step. bdserve's come from one forward pass over the prompt and llama.cpp's tokens that asks for
 * the logits of every position that predicts one of them.
 */
final class LlamaCppLogits {
    private LlamaCppLogits() {}

    /** One greedy step of llama.cpp: its raw logits over the vocabulary and their argmax (the token it chose). */
    record Step(int token, float[] logits) {
        /** max − min of the logits. */
        double range() {
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
            for (float v : logits) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
            return hi - lo;
        }

        /** log p(top-1) − log p(top-2): the gap between the two largest logits. */
        double margin() {
            float a = Float.NEGATIVE_INFINITY, b = Float.NEGATIVE_INFINITY;
            for (float v : logits) {
                if (v > a) { b = a; a = v; } else if (v > b) b = v;
            }
            return a - b;
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** llama.cpp's greedy continuation of {@code prompt} by {@code n} tokens on each model, with every step's logits. */
    static List<List<Step>> llamaCpp(int vocab, int[] prompt, int n, Path... models) { return llamaCpp(256, vocab, prompt, n, models); }

    /** The same in a llama.cpp context of {@code contextSize} positions (which picks Phi-3's LongRoPE factors). */
    static List<List<Step>> llamaCpp(int contextSize, int vocab, int[] prompt, int n, Path... models) {
        return llamaCpp(contextSize, null, vocab, prompt, n, models);
    }

    /** The same with a GGUF LoRA adapter applied at scale 1 (null: none). */
    static List<List<Step>> llamaCpp(int contextSize, Path lora, int vocab, int[] prompt, int n, Path... models) {
        Path script;
        try {
            script = Path.of(LlamaCppLogits.class.getResource("llamacpp_logits.mjs").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        Path jsonl = models[0].resolveSibling("llamacpp-logits.jsonl"), log = models[0].resolveSibling("llamacpp-logits.log");
        List<String> cmd = new ArrayList<>(List.of("node", script.toString(), GgufTestFiles.root().toString(), jsonl.toString(), Integer.toString(vocab),
                Integer.toString(n), String.join(",", Arrays.stream(prompt).mapToObj(Integer::toString).toList())));
        for (Path m : models) cmd.add(m.toString());
        List<List<Step>> out = new ArrayList<>();
        for (int i = 0; i < models.length; i++) out.add(new ArrayList<>());
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
            pb.environment().put("LLAMACPP_CONTEXT", Integer.toString(contextSize));
            if (lora != null) pb.environment().put("LLAMACPP_LORA", lora.toString());
            Process p = pb.start();
            p.getOutputStream().close();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("node llamacpp_logits.mjs did not finish in 120 s");
            }
            if (p.exitValue() != 0)
                fail("node llamacpp_logits.mjs failed (exit " + p.exitValue() + "):\n" + Files.readString(log, StandardCharsets.UTF_8));
            for (String line : Files.readAllLines(jsonl, StandardCharsets.UTF_8)) {
                JsonNode j = JSON.readTree(line);
                JsonNode l = j.get("logits");
                float[] logits = new float[l.size()];
                for (int v = 0; v < logits.length; v++) logits[v] = (float) l.get(v).asDouble();
                List<Step> steps = out.get(j.get("model").asInt());
                assertEquals(steps.size(), j.get("step").asInt(), "steps in order");
                assertEquals(argmax(logits), j.get("token").asInt(), "llama.cpp's token is the argmax of its logits");
                steps.add(new Step(j.get("token").asInt(), logits));
            }
        } catch (IOException e) {
            fail("cannot run node for llama.cpp: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
        for (int i = 0; i < models.length; i++) {
            assertEquals(n, out.get(i).size(), "llama.cpp's steps on " + models[i].getFileName());
            for (Step s : out.get(i)) assertEquals(vocab, s.logits().length, "llama.cpp's logits row");
        }
        return out;
    }

    /** The prompt followed by the tokens of every step but the last: the sequence whose positions predict the steps. */
    static int[] fedTokens(int[] prompt, List<Step> steps) {
        int[] t = Arrays.copyOf(prompt, prompt.length + steps.size() - 1);
        for (int s = 0; s + 1 < steps.size(); s++) t[prompt.length + s] = steps.get(s).token();
        return t;
    }

    /**
     * bdserve's logits [steps][vocab] on {@code model} (TP 1) for the same steps: one forward pass over
     * {@link #fedTokens}, with the logits of the positions from the prompt's last one on.
     */
    static float[][] bdserve(Path model, int[] prompt, List<Step> steps) { return bdserve(model, null, prompt, steps); }

    /** The same with an adapter (a PEFT folder or a GGUF LoRA file; null: none). */
    static float[][] bdserve(Path model, Path adapter, int[] prompt, List<Step> steps) {
        int[] tokens = fedTokens(prompt, steps);
        int n = steps.size(), t = tokens.length;
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(model), TpGroup.Options.single(2).withKvCache(16L << 20, 16))) {
            int vocab = g.config().vocabSize();
            int id = adapter == null ? -1 : g.addAdapter(dev.bdserve.lora.PeftAdapterLoader.load("a", adapter, g.config(), 64));
            int[] pos = new int[t], seq = new int[t], ads = new int[t], rows = new int[n];
            for (int i = 0; i < t; i++) { pos[i] = i; ads[i] = id; }
            for (int s = 0; s < n; s++) rows[s] = prompt.length - 1 + s;
            int[][] tables = {new BlockManager(g.kvBlocks(), g.kvBlockSize()).allocateTable(t)};
            float[] flat = new float[n * vocab];
            g.forward(new StepBatch(tokens, pos, seq, ads, rows, tables), flat);
            float[][] out = new float[n][];
            for (int s = 0; s < n; s++) out[s] = Arrays.copyOfRange(flat, s * vocab, (s + 1) * vocab);
            return out;
        }
    }

    /**
     * bdserve's logits [steps][vocab] on {@code model} (TP 1) for the same steps, decoded as a server decodes: the
     * prompt but its last token in one forward pass, then one token per pass, so every matrix product runs the
     * one-token (GEMV) kernels.
     */
    static float[][] bdserveStepwise(Path model, int[] prompt, List<Step> steps) {
        int[] tokens = fedTokens(prompt, steps);
        int n = steps.size(), pre = prompt.length - 1;
        try (TpGroup g = TpGroup.threads(() -> ModelFiles.open(model), TpGroup.Options.single(2).withKvCache(16L << 20, 16))) {
            int vocab = g.config().vocabSize();
            int[][] tables = {new BlockManager(g.kvBlocks(), g.kvBlockSize()).allocateTable(tokens.length)};
            float[] logits = new float[vocab];
            int[] pos = new int[pre];
            for (int i = 0; i < pre; i++) pos[i] = i;
            g.forward(new StepBatch(Arrays.copyOf(tokens, pre), pos, new int[pre], filled(pre, -1), new int[]{pre - 1}, tables), logits);
            float[][] out = new float[n][];
            for (int s = 0; s < n; s++) {
                int p = pre + s;
                g.forward(new StepBatch(new int[]{tokens[p]}, new int[]{p}, new int[1], new int[]{-1}, new int[]{0}, tables), logits);
                out[s] = logits.clone();
            }
            return out;
        }
    }

    private static int[] filled(int n, int v) {
        int[] a = new int[n];
        Arrays.fill(a, v);
        return a;
    }

    /** max |a − b| over the row. */
    static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs((double) a[i] - b[i]));
        return m;
    }

    /** The index of the largest value, the lowest on ties. */
    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
