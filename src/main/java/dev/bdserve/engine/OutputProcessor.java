package dev.bdserve.engine;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.structured.TokenMatcher;
import dev.bdserve.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * One request's output: turns its logits rows into tokens and text. In order: the token mask, the presence and
 * frequency penalties (on generated tokens, as OpenAI and vLLM define them), the sampler, log-probabilities, the
 * stop rules (EOS, stop strings matched incrementally, max tokens and the context limit) and detokenisation, holding
 * back text that could still become a stop string. The engine and the static {@link Generator} both use it. One per
 * request; the thread that steps the request owns it.
 *
 * <p>A structured-output constraint (a {@link TokenMatcher}) masks, before the penalties and the sampler, every id
 * its grammar does not allow next, so greedy decoding stays deterministic; the sampled token then advances it. Its EOS
 * is allowed only where the output is complete and ends the request with "stop" (even with {@code ignore_eos}: the
 * constrained output is done). When it allows no token at all, {@link #next} throws {@link ConstraintDeadException}.
 */
public final class OutputProcessor {
    /**
     * What one sampled token did.
     *
     * @param token   the token, or −1 when it was EOS (nothing is appended; the request ends)
     * @param text    the text that became safe to show with it (empty while held back)
     * @param logprob its log-probability (NaN unless asked for)
     * @param top     the most likely alternatives (empty unless asked for)
     * @param finish  null while the request goes on; "stop" or "length" when this token ended it
     */
    public record Step(int token, String text, float logprob, List<TokenEvent.TopLogprob> top, String finish) {}

    private final SamplingParams params;
    private final Tokenizer.StreamDecoder decoder;
    private final int[] eosIds;
    private final TokenMask mask;                   // null: every id may be sampled
    private final TokenMatcher matcher;             // null: unconstrained
    private final BitSet allowed;                   // the matcher's ids allowed next (scratch; null when unconstrained)
    private double[] maskSeconds = new double[0];   // [masks] each step's mask time
    private int masks;
    private final int limit;                        // generated tokens at most (max_tokens and the context's room)
    private final SplittableRandom rng;
    private final StopMatcher stops;
    private final StringBuilder text = new StringBuilder();
    private final IntList generated = new IntList(16);
    private final Map<Integer, Integer> counts = new HashMap<>();   // generated token → occurrences, for the penalties
    private int emitted;                            // chars of text handed out
    private String finish;

    /**
     * @param eosIds the ids that end a request (see {@link #eosIds})
     * @param mask   the ids that may be sampled, or null for all
     * @param limit  most tokens to generate: max_tokens, or fewer where the context ends first
     */
    public OutputProcessor(SamplingParams params, Tokenizer tokenizer, int[] eosIds, TokenMask mask, int limit) {
        this(params, tokenizer, eosIds, mask, limit, null);
    }

    /**
     * As {@link #OutputProcessor(SamplingParams, Tokenizer, int[], TokenMask, int)}, constrained by {@code matcher}
     * (null: unconstrained), which this processor owns from now on.
     */
    public OutputProcessor(SamplingParams params, Tokenizer tokenizer, int[] eosIds, TokenMask mask, int limit, TokenMatcher matcher) {
        if (limit < 0) throw new IllegalArgumentException("the token limit must be ≥ 0, got " + limit);
        this.params = params;
        this.decoder = tokenizer.newStreamDecoder();
        this.eosIds = eosIds.clone();
        this.mask = mask;
        this.matcher = matcher;
        this.allowed = matcher == null ? null : new BitSet(matcher.vocabulary().size());
        this.limit = limit;
        this.rng = params.seed() != null ? new SplittableRandom(params.seed()) : new SplittableRandom();
        this.stops = new StopMatcher(params.stop());
    }

    /** The end-of-sequence ids: the tokenizer's and the model config's. */
    public static int[] eosIds(Tokenizer tokenizer, LlamaConfig model) {
        return java.util.stream.IntStream.concat(java.util.Arrays.stream(tokenizer.eosIds()), model.eosTokenIds().stream().mapToInt(Integer::intValue))
                .distinct().toArray();
    }

    /**
     * Samples the next token from logits[off .. off+vocab) (modified in place: mask and penalties) and applies the
     * stop rules. Throws {@link IllegalStateException} when no token can be drawn from the row (NaN, +Inf), and
     * {@link ConstraintDeadException} when the constraint allows no token.
     */
    public Step next(float[] logits, int off, int vocab) {
        if (finish != null) throw new IllegalStateException("the request already finished (" + finish + ")");
        if (matcher != null) applyConstraint(logits, off, vocab);
        if (params.hasPenalties())
            for (var e : counts.entrySet())
                logits[off + e.getKey()] -= (float) (params.presencePenalty() + params.frequencyPenalty() * e.getValue());
        int tok = Sampler.sample(logits, off, vocab, params, rng, mask);
        float lp = Float.NaN;
        List<TokenEvent.TopLogprob> top = List.of();
        if (params.logprobs() >= 0) {
            double lse = Logprobs.logSumExp(logits, off, vocab);
            lp = (float) (logits[off + tok] - lse);
            top = Logprobs.top(logits, off, vocab, params.logprobs(), lse);
        }
        boolean constrainedEos = false;
        if (matcher != null) {
            if (!matcher.advance(tok))        // cannot happen after the mask; never let an unconstrained token through
                throw new IllegalStateException("the sampled token " + tok + " is not allowed by the output constraint");
            constrainedEos = matcher.isFinished();
        }
        if (constrainedEos || !params.ignoreEos() && isEos(tok)) {
            int before = text.length();
            text.append(decoder.flush());
            int cut = stops.find(text, before);
            if (cut >= 0) text.setLength(cut);
            finish = "stop";
            return new Step(-1, "", lp, top, finish);       // the text left comes with takeRest()
        }
        generated.add(tok);
        counts.merge(tok, 1, Integer::sum);
        int before = text.length();
        text.append(decoder.push(tok));
        int cut = stops.find(text, before);
        if (cut >= 0) {
            text.setLength(cut);
            finish = "stop";
        } else if (generated.size() >= limit) {
            text.append(decoder.flush());
            finish = "length";
        }
        return new Step(tok, take(finish != null), lp, top, finish);
    }

    /**
     * Sets the logit of every id the matcher does not allow next to −Inf (ids past its vocabulary included, so padded
     * rows never pass). Throws {@link ConstraintDeadException} when it allows none.
     */
    private void applyConstraint(float[] logits, int off, int vocab) {
        long t0 = System.nanoTime();
        matcher.fillAllowed(allowed);
        if (allowed.isEmpty())
            throw new ConstraintDeadException("the output constraint (" + matcher.constraint().kind() + ") cannot be completed: no token of the "
                    + "vocabulary may follow the " + generated.size() + " tokens generated so far" + (generated.isEmpty() ? "" : " (\"" + tail() + "\")"));
        int next = 0;
        for (int id = allowed.nextSetBit(0); id >= 0 && id < vocab; id = allowed.nextSetBit(id + 1)) {
            if (id > next) Arrays.fill(logits, off + next, off + id, Float.NEGATIVE_INFINITY);
            next = id + 1;
        }
        if (next < vocab) Arrays.fill(logits, off + next, off + vocab, Float.NEGATIVE_INFINITY);
        if (masks == maskSeconds.length) maskSeconds = Arrays.copyOf(maskSeconds, Math.max(16, masks * 2));
        maskSeconds[masks++] = (System.nanoTime() - t0) / 1e9;
    }

    /** The last characters of the text, for messages. */
    private String tail() {
        return text.length() <= 40 ? text.toString() : "…" + text.substring(text.length() - 40);
    }

    /** Each step's mask time in seconds (the allowed set and its application to the logits), in order; null when unconstrained. */
    public double[] maskSeconds() { return matcher == null ? null : Arrays.copyOf(maskSeconds, masks); }

    /** The constraint matcher (null when unconstrained), e.g. for its mask time. */
    public TokenMatcher matcher() { return matcher; }

    /** The text that became safe to show: all of it once the request ends, else all but a possible stop string's start. */
    private String take(boolean last) {
        int safe = Math.max(emitted, text.length() - (last ? 0 : stops.holdBack()));
        String delta = text.substring(emitted, safe);
        emitted = safe;
        return delta;
    }

    /** The text not handed out yet (held back until the request ended); empty afterwards. */
    public String takeRest() { return take(true); }

    /** All text generated so far (cut before a matched stop string). */
    public String text() { return text.toString(); }

    /** The generated token ids (EOS excluded). */
    public int[] tokens() { return generated.toArray(); }

    public int generatedCount() { return generated.size(); }

    /** "stop", "length", or null while the request goes on. */
    public String finish() { return finish; }

    private boolean isEos(int tok) {
        for (int e : eosIds) if (e == tok) return true;
        return false;
    }
}
