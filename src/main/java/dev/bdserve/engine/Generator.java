package dev.bdserve.engine;

import dev.bdserve.structured.TokenVocabulary;
import dev.bdserve.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Generates a static batch of sequences on a model runner (one rank or a TP group): their prompts are
 * prefilled together in steps of at most {@code prefillChunk} tokens, then every unfinished sequence
 * decodes one token per step. Each sequence's {@link OutputProcessor} samples and applies the stop rules
 * (EOS unless ignored, stop strings, max tokens, the context limit) and a request's output constraint, as in the
 * engine. Sampling happens here, on rank 0. A constraint that can no longer be satisfied ends {@link #generate} with
 * its {@link ConstraintDeadException}.
 */
public final class Generator {
    private final ModelRunner model;
    private final Tokenizer tokenizer;
    private final int prefillChunk;
    private final BlockManager blocks;
    private final int[] eosIds;
    private final TokenMask vocabMask;      // the tokenizer's ids; null when it knows every row
    private TokenVocabulary vocabulary;     // for constraints; built on the first constrained request
    private long prefillNanos, decodeNanos, prefillTokens, decodeTokens, decodeSteps;

    public Generator(ModelRunner model, Tokenizer tokenizer, int prefillChunk) {
        if (prefillChunk < 1) throw new IllegalArgumentException("prefill chunk must be ≥ 1");
        this.model = model;
        this.tokenizer = tokenizer;
        this.prefillChunk = prefillChunk;
        this.blocks = new BlockManager(model.kvBlocks(), model.kvBlockSize());
        this.eosIds = OutputProcessor.eosIds(tokenizer, model.config());
        this.vocabMask = TokenMask.forVocabularies(tokenizer.vocabSize(), model.config().vocabSize(), tokenizer.unusedIds());
    }

    /** Receives text as sequences produce it. */
    @FunctionalInterface
    public interface TextListener { void onText(int sequence, String delta); }

    /** Per-sequence state; belongs to this generate call. */
    private final class Seq {
        final int index;
        final int[] table;             // [blocks] KV blocks for prompt + max tokens
        final GenerationRequest req;
        final OutputProcessor output;
        int nextToken = -1;            // sampled, not yet fed

        Seq(int index, GenerationRequest req) {
            this.index = index;
            this.req = req;
            int ctx = model.config().maxPositions();
            this.table = blocks.allocateTable(Math.min(ctx, req.prompt().length + req.maxTokens()));
            this.output = new OutputProcessor(req.params(), tokenizer, eosIds, vocabMask, Math.min(req.maxTokens(), ctx - req.prompt().length),
                    req.constraint() == null ? null : req.constraint().newMatcher(vocabulary()));
        }

        int position() { return req.prompt().length + output.generatedCount(); }

        boolean live() { return output.finish() == null; }
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
                List<Seq> live = seqs.stream().filter(Seq::live).toList();
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
        for (Seq s : seqs) results.add(new GenerationResult(s.output.tokens(), s.output.text(), s.output.finish()));
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

    /** Samples the next token of s from its logits row and gives its listener the text that became safe to show. */
    private void accept(Seq s, float[] logits, int off, int vocab, TextListener listener) {
        OutputProcessor.Step step = s.output.next(logits, off, vocab);
        String text = step.finish() == null ? step.text() : step.text() + s.output.takeRest();
        if (listener != null && !text.isEmpty()) listener.onText(s.index, text);
        s.nextToken = step.token();
    }

    /** The tokenizer's vocabulary as token bytes, built on first use (it takes seconds on a large vocabulary). */
    private TokenVocabulary vocabulary() {
        if (vocabulary == null) vocabulary = TokenVocabulary.of(tokenizer);
        return vocabulary;
    }

    /** Seconds spent in prefill steps so far. */
    public double prefillSeconds() { return prefillNanos / 1e9; }
    /** Seconds spent in decode steps so far. */
    public double decodeSeconds() { return decodeNanos / 1e9; }
    public long prefillTokens() { return prefillTokens; }
    public long decodeTokens() { return decodeTokens; }
    public long decodeSteps() { return decodeSteps; }
}
