package dev.bdserve.engine;

import dev.bdserve.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Generates a static batch of sequences on a model runner (one rank or a TP group): their prompts are
 * prefilled together in steps of at most {@code prefillChunk} tokens, then every unfinished sequence
 * decodes one token per step. Stops on EOS (unless ignored), on stop strings, at max tokens and at the
 * context limit. Sampling happens here, on rank 0.
 */
public final class Generator {
    private final ModelRunner model;
    private final Tokenizer tokenizer;
    private final int prefillChunk;
    private final BlockManager blocks;
    private long prefillNanos, decodeNanos, prefillTokens, decodeTokens, decodeSteps;

    public Generator(ModelRunner model, Tokenizer tokenizer, int prefillChunk) {
        if (prefillChunk < 1) throw new IllegalArgumentException("prefill chunk must be ≥ 1");
        this.model = model;
        this.tokenizer = tokenizer;
        this.prefillChunk = prefillChunk;
        this.blocks = new BlockManager(model.kvBlocks(), model.kvBlockSize());
    }

    /** Receives text as sequences produce it. */
    @FunctionalInterface
    public interface TextListener { void onText(int sequence, String delta); }

    /** Per-sequence state; belongs to this generate call. */
    private final class Seq {
        final int index;
        final int[] table;    // KV blocks for prompt + max tokens
        final GenerationRequest req;
        final SplittableRandom rng;
        final Tokenizer.StreamDecoder decoder = tokenizer.newStreamDecoder();
        final List<Integer> out = new ArrayList<>();
        final StringBuilder text = new StringBuilder();
        int emitted;          // chars of text already given to the listener
        int nextToken = -1;   // sampled, not yet fed
        String finish;

        Seq(int index, GenerationRequest req) {
            this.index = index;
            this.req = req;
            this.table = blocks.allocateTable(Math.min(model.config().maxPositions(), req.prompt().length + req.maxTokens()));
            this.rng = req.params().seed() != null ? new SplittableRandom(req.params().seed()) : new SplittableRandom();
        }

        int position() { return req.prompt().length + out.size(); }
    }

    public List<GenerationResult> generate(List<GenerationRequest> requests, TextListener listener) {
        int vocab = model.config().vocabSize();
        List<Seq> seqs = new ArrayList<>();
        try {
            for (int i = 0; i < requests.size(); i++) {
                GenerationRequest r = requests.get(i);
                if (r.prompt().length >= model.config().maxPositions())
                    throw new IllegalArgumentException("prompt of " + r.prompt().length + " tokens does not fit the context limit of " + model.config().maxPositions());
                seqs.add(new Seq(i, r));
            }
            prefill(seqs, vocab, listener);
            while (true) {
                List<Seq> live = seqs.stream().filter(s -> s.finish == null).toList();
                if (live.isEmpty()) break;
                int n = live.size();
                int[] toks = new int[n], pos = new int[n], idx = new int[n], ads = new int[n], rows = new int[n];
                int[][] tables = new int[n][];
                for (int i = 0; i < n; i++) {
                    Seq s = live.get(i);
                    toks[i] = s.nextToken;
                    pos[i] = s.position() - 1;
                    idx[i] = i;
                    tables[i] = s.table;
                    ads[i] = s.req.adapterId();
                    rows[i] = i;
                }
                float[] logits = new float[n * vocab];
                long t0 = System.nanoTime();
                model.forward(new StepBatch(toks, pos, idx, ads, rows, tables), logits);
                decodeNanos += System.nanoTime() - t0;
                decodeTokens += n;
                decodeSteps++;
                for (int i = 0; i < n; i++) accept(live.get(i), logits, i * vocab, vocab, listener);
            }
        } finally {
            for (Seq s : seqs) blocks.releaseTable(s.table);
        }
        List<GenerationResult> results = new ArrayList<>();
        for (Seq s : seqs)
            results.add(new GenerationResult(s.out.stream().mapToInt(Integer::intValue).toArray(), s.text.toString(), s.finish));
        return results;
    }

    /** Feeds all prompts, in steps of at most prefillChunk tokens, and samples each first token. */
    private void prefill(List<Seq> seqs, int vocab, TextListener listener) {
        int total = seqs.stream().mapToInt(s -> s.req.prompt().length).sum();
        int[] toks = new int[total], pos = new int[total], ids = new int[total], ads = new int[total];
        Seq[] owner = new Seq[total];
        int k = 0;
        for (Seq s : seqs)
            for (int p = 0; p < s.req.prompt().length; p++) {
                toks[k] = s.req.prompt()[p]; pos[k] = p; ids[k] = s.index; ads[k] = s.req.adapterId(); owner[k++] = s;
            }
        int[][] tables = new int[seqs.size()][];
        for (Seq s : seqs) tables[s.index] = s.table;
        for (int start = 0; start < total; start += prefillChunk) {
            int end = Math.min(total, start + prefillChunk);
            int n = end - start;
            List<Integer> rows = new ArrayList<>();
            for (int i = 0; i < n; i++)
                if (pos[start + i] == owner[start + i].req.prompt().length - 1) rows.add(i); // the prompt's last token
            int[] rowArr = rows.stream().mapToInt(Integer::intValue).toArray();
            float[] logits = new float[rowArr.length * vocab];
            long t0 = System.nanoTime();
            model.forward(new StepBatch(Arrays.copyOfRange(toks, start, end), Arrays.copyOfRange(pos, start, end),
                    Arrays.copyOfRange(ids, start, end), Arrays.copyOfRange(ads, start, end), rowArr, tables), logits);
            prefillNanos += System.nanoTime() - t0;
            prefillTokens += n;
            for (int r = 0; r < rowArr.length; r++) accept(owner[start + rowArr[r]], logits, r * vocab, vocab, listener);
        }
    }

    /** Samples the next token of s from its logits row and applies the stop rules. */
    private void accept(Seq s, float[] logits, int off, int vocab, TextListener listener) {
        SamplingParams p = s.req.params();
        int tok = Sampler.sample(logits, off, vocab, p, s.rng);
        if (!p.ignoreEos() && isEos(tok)) { finish(s, "stop", listener); return; }
        s.out.add(tok);
        s.text.append(s.decoder.push(tok));
        int cut = p.stop().isEmpty() ? -1 : firstStop(s.text, p.stop());
        if (cut >= 0) { s.text.setLength(cut); finish(s, "stop", listener); return; }
        if (s.out.size() >= s.req.maxTokens() || s.position() >= model.config().maxPositions()) {
            s.text.append(s.decoder.flush());
            finish(s, "length", listener);
            return;
        }
        s.nextToken = tok;
        // Hold back a tail that could still grow into a stop string.
        int hold = p.stop().stream().mapToInt(String::length).max().orElse(1) - 1;
        int safe = Math.max(s.emitted, s.text.length() - hold);
        if (listener != null && safe > s.emitted) { listener.onText(s.index, s.text.substring(s.emitted, safe)); s.emitted = safe; }
    }

    private void finish(Seq s, String reason, TextListener listener) {
        s.finish = reason;
        if (listener != null && s.text.length() > s.emitted) listener.onText(s.index, s.text.substring(s.emitted));
        s.emitted = s.text.length();
    }

    private boolean isEos(int tok) {
        for (int e : tokenizer.eosIds()) if (e == tok) return true;
        for (int e : model.config().eosTokenIds()) if (e == tok) return true;
        return false;
    }

    private static int firstStop(CharSequence text, List<String> stops) {
        int best = -1;
        String t = text.toString();
        for (String stop : stops) {
            int i = t.indexOf(stop);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    /** Seconds spent in prefill steps so far. */
    public double prefillSeconds() { return prefillNanos / 1e9; }
    /** Seconds spent in decode steps so far. */
    public double decodeSeconds() { return decodeNanos / 1e9; }
    public long prefillTokens() { return prefillTokens; }
    public long decodeTokens() { return decodeTokens; }
    public long decodeSteps() { return decodeSteps; }
}
