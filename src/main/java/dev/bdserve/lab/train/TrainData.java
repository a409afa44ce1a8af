package dev.bdserve.lab.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Training data as token sequences with per-position loss weights.
 * <ul>
 *   <li>Plain text (language modelling): documents are separated by blank lines (or are single lines when the
 *   file has no blank line); each is BOS + its tokens; the documents are concatenated and cut into windows of
 *   seqLen + 1 tokens (consecutive windows share one token), loss on every position.</li>
 *   <li>JSONL with {"prompt", "completion"} per line: BOS + tokens of prompt + completion (+ EOS), loss only on
 *   the completion's tokens (and the EOS), truncated to seqLen + 1 tokens.</li>
 * </ul>
 * The held-out split takes a fixed fraction of the documents / examples by a fixed shuffle that does not
 * depend on the training seed, so every run on the same file is evaluated on the same examples.
 */
public final class TrainData {
    private static final long SPLIT_SEED = 0x5EED_5EEDL;

    private TrainData() {}

    /** One training sequence: position t predicts tokens[t+1] with loss weight weights[t]. */
    public record Example(int[] tokens, float[] weights) {
        public Example {
            if (tokens.length < 2 || weights.length != tokens.length - 1)
                throw new IllegalArgumentException("an example needs ≥ 2 tokens and one weight per predicted position");
        }

        public int predicted() { int n = 0; for (float w : weights) if (w != 0) n++; return n; }
    }

    /** Held-out and training examples, and whether the file was prompt/completion JSONL. */
    public record Split(List<Example> train, List<Example> eval, boolean promptCompletion) {
        public Split {
            train = List.copyOf(train);
            eval = List.copyOf(eval);
            if (train.isEmpty()) throw new IllegalArgumentException("no training examples");
        }

        public long trainTokens() { long n = 0; for (Example e : train) n += e.tokens().length - 1; return n; }
    }

    /** A prompt and its completion (JSONL records). */
    public record PromptCompletion(String prompt, String completion) {}

    public static boolean isJsonl(Path file) { return file.getFileName().toString().endsWith(".jsonl"); }

    /** Loads and splits a data file (JSONL by the .jsonl extension, otherwise plain text). */
    public static Split load(Path file, Tokenizer tok, int seqLen, double evalFraction) {
        if (seqLen < 1) throw new IllegalArgumentException("seq-len must be ≥ 1");
        if (!(evalFraction >= 0 && evalFraction < 1)) throw new IllegalArgumentException("eval fraction must be in [0, 1)");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("data file not found: " + file);
        if (isJsonl(file)) {
            List<PromptCompletion> recs = readJsonl(file);
            boolean[] held = heldOut(recs.size(), evalFraction);
            List<Example> tr = new ArrayList<>(), ev = new ArrayList<>();
            for (int i = 0; i < recs.size(); i++) (held[i] ? ev : tr).add(promptCompletion(tok, recs.get(i), seqLen));
            return new Split(tr, ev, true);
        }
        String text;
        try { text = Files.readString(file); } catch (IOException e) { throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e); }
        List<String> docs = documents(text);
        boolean[] held = heldOut(docs.size(), evalFraction);
        List<String> tr = new ArrayList<>(), ev = new ArrayList<>();
        for (int i = 0; i < docs.size(); i++) (held[i] ? ev : tr).add(docs.get(i));
        return new Split(windows(tok, tr, seqLen), windows(tok, ev, seqLen), false);
    }

    /** Paragraphs split by blank lines, or lines when there are no blank lines. */
    static List<String> documents(String text) {
        String norm = text.replace("\r\n", "\n");
        String[] parts = norm.contains("\n\n") ? norm.split("\n\\s*\n") : norm.split("\n");
        List<String> out = new ArrayList<>();
        for (String p : parts) if (!p.isBlank()) out.add(p.strip());
        return out;
    }

    public static List<PromptCompletion> readJsonl(Path file) {
        ObjectMapper json = new ObjectMapper();
        List<PromptCompletion> out = new ArrayList<>();
        try {
            int ln = 0;
            for (String line : Files.readAllLines(file)) {
                ln++;
                if (line.isBlank()) continue;
                JsonNode j = json.readTree(line);
                if (j == null || !j.hasNonNull("prompt") || !j.hasNonNull("completion"))
                    throw new IllegalArgumentException(file + ":" + ln + ": expected {\"prompt\": ..., \"completion\": ...}");
                out.add(new PromptCompletion(j.get("prompt").asText(), j.get("completion").asText()));
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": not valid JSONL: " + e.getMessage().lines().findFirst().orElse(""));
        }
        return out;
    }

    /** A fixed pseudo-random fraction of n items (at least one when the fraction is positive and n ≥ 2). */
    static boolean[] heldOut(int n, double fraction) {
        int k = (int) Math.round(n * fraction);
        if (fraction > 0 && n >= 2) k = Math.max(1, k);
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        SplittableRandom r = new SplittableRandom(SPLIT_SEED);
        for (int i = n - 1; i > 0; i--) { int j = r.nextInt(i + 1); int t = idx[i]; idx[i] = idx[j]; idx[j] = t; }
        boolean[] held = new boolean[n];
        for (int i = 0; i < k; i++) held[idx[i]] = true;
        return held;
    }

    /** The documents as one BOS-separated token stream cut into windows of seqLen + 1 (stride seqLen). */
    static List<Example> windows(Tokenizer tok, List<String> docs, int seqLen) {
        int[] stream = new int[1024];
        int n = 0;
        for (String d : docs) {
            int[] ids = tok.encode(d, true);
            if (n + ids.length > stream.length) stream = Arrays.copyOf(stream, Math.max(stream.length * 2, n + ids.length));
            System.arraycopy(ids, 0, stream, n, ids.length);
            n += ids.length;
        }
        List<Example> out = new ArrayList<>();
        for (int s = 0; s + 1 < n; s += seqLen) {
            int e = Math.min(n, s + seqLen + 1);
            if (e - s < 2) break;
            float[] w = new float[e - s - 1];
            Arrays.fill(w, 1f);
            out.add(new Example(Arrays.copyOfRange(stream, s, e), w));
        }
        return out;
    }

    /**
     * BOS + prompt + completion (+ EOS): the tokens of prompt + completion encoded together (as the model will
     * see them when it continues the prompt), with loss on the positions past the longest common prefix with
     * the prompt's own encoding; truncated to seqLen + 1 tokens.
     */
    public static Example promptCompletion(Tokenizer tok, PromptCompletion pc, int seqLen) {
        int[] p = tok.encode(pc.prompt(), true);
        int[] full = tok.encode(pc.prompt() + pc.completion(), true);
        int k = 0;
        while (k < p.length && k < full.length && p[k] == full[k]) k++;
        int eos = tok.eosIds().length > 0 ? tok.eosIds()[0] : -1;
        int[] all = eos >= 0 ? Arrays.copyOf(full, full.length + 1) : full;
        if (eos >= 0) all[full.length] = eos;
        if (all.length > seqLen + 1) all = Arrays.copyOf(all, seqLen + 1);
        if (k >= all.length) throw new IllegalArgumentException("prompt fills the whole sequence; nothing to learn (raise --seq-len): " + pc.prompt());
        float[] w = new float[all.length - 1];
        for (int t = Math.max(0, k - 1); t < w.length; t++) w[t] = 1f;   // position t predicts token t+1 ≥ k
        return new Example(all, w);
    }
}
