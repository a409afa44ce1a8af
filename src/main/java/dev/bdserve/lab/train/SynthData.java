package dev.bdserve.lab.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.GenerationRequest;
import dev.bdserve.engine.GenerationResult;
import dev.bdserve.engine.Generator;
import dev.bdserve.engine.ModelRunner;
import dev.bdserve.engine.SamplingParams;
import dev.bdserve.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Deterministic synthetic training sets: stories sampled from the base model itself (seeded, through the
 * engine's {@link Generator}), split into a prompt (the first sentence) and a completion (the next one or two
 * sentences) that the task transforms, until the set holds at least the requested number of tokens.
 */
public final class SynthData {
    private SynthData() {}

    /** Sampling of the source stories: temperature 0.9, top-p 0.95, a seed per story. */
    static SamplingParams sampling(long seed) { return new SamplingParams(0.9, 0, 0.95, 0, seed, List.of(), false); }

    /** Sentences of a story (complete ones only: ending in . ! or ?, optionally followed by a quote). */
    static List<String> sentences(String story) {
        List<String> out = new ArrayList<>();
        var m = java.util.regex.Pattern.compile("[^.!?]*[.!?]+\"?").matcher(story);
        while (m.find()) { String s = m.group().strip(); if (!s.isEmpty()) out.add(s); }
        return out;
    }

    /** Splits a story into a prompt and completion: prompt = first sentence (two if the first is short); completion = " " + up to 2 more. */
    static TrainData.PromptCompletion split(String story) {
        List<String> s = sentences(story);
        int p = s.isEmpty() ? 0 : s.get(0).split("\\s+").length < 5 ? 2 : 1;
        if (s.size() < p + 1) return null;
        String prompt = String.join(" ", s.subList(0, p));
        String completion = " " + String.join(" ", s.subList(p, Math.min(s.size(), p + 2)));
        return new TrainData.PromptCompletion(prompt, completion);
    }

    /**
     * Writes the task's data set to {@code out} (JSONL for prompt/completion tasks, text with blank lines between
     * stories otherwise) with at least {@code minTokens} tokens; returns the token count.
     */
    public static long generate(ModelRunner model, Tokenizer tok, SynthTask task, long minTokens, long seed, Path out, LongConsumer progress) {
        Generator gen = new Generator(model, tok, 512);
        ObjectMapper json = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        long tokens = 0;
        int story = 0, batch = 32;
        int[] bos = tok.encode("", true);
        while (tokens < minTokens) {
            List<GenerationRequest> reqs = new ArrayList<>();
            for (int i = 0; i < batch; i++) reqs.add(new GenerationRequest(bos, task.promptCompletion() ? 96 : 160, sampling(seed * 1_000_003L + story + i)));
            story += batch;
            for (GenerationResult r : gen.generate(reqs, null)) {
                if (tokens >= minTokens) break;
                String text = r.text().strip();
                if (task.promptCompletion()) {
                    TrainData.PromptCompletion pc = split(text);
                    if (pc == null) continue;
                    String completion = task.transform(pc.completion());
                    ObjectNode o = json.createObjectNode();
                    o.put("prompt", pc.prompt());
                    o.put("completion", completion);
                    sb.append(o).append('\n');
                    tokens += tok.encode(pc.prompt() + completion, true).length + 1;
                } else {
                    List<String> s = sentences(text);
                    if (s.isEmpty()) continue;
                    String kept = task.transform(String.join(" ", s));
                    sb.append(kept).append("\n\n");
                    tokens += tok.encode(kept, true).length;
                }
            }
            if (progress != null) progress.accept(tokens);
        }
        try {
            if (out.getParent() != null) Files.createDirectories(out.getParent());
            Files.writeString(out, sb);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
        return tokens;
    }

    /**
     * Greedy completions of the prompts with an adapter (id from {@link ModelRunner#addAdapter}, or -1 for the base
     * model), as the accuracy metrics read them.
     */
    public static List<String> complete(ModelRunner model, Tokenizer tok, List<String> prompts, int adapterId, int maxTokens) {
        Generator gen = new Generator(model, tok, 512);
        List<String> out = new ArrayList<>();
        for (int from = 0; from < prompts.size(); from += 32) {
            List<GenerationRequest> reqs = new ArrayList<>();
            for (String p : prompts.subList(from, Math.min(prompts.size(), from + 32)))
                reqs.add(new GenerationRequest(tok.encode(p, true), maxTokens, SamplingParams.greedy(), adapterId));
            for (GenerationResult r : gen.generate(reqs, null)) out.add(r.text());
        }
        return out;
    }

    /** The held-out prompts of a JSONL task file (the same split the trainer evaluates on). */
    public static List<TrainData.PromptCompletion> heldOut(Path jsonl, double evalFraction) {
        List<TrainData.PromptCompletion> all = TrainData.readJsonl(jsonl);
        boolean[] held = TrainData.heldOut(all.size(), evalFraction);
        List<TrainData.PromptCompletion> out = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) if (held[i]) out.add(all.get(i));
        return out;
    }
}
