package dev.bdserve.engine;

import dev.bdserve.model.LlamaConfig;
import dev.bdserve.structured.TokenMatcher;
import dev.bdserve.structured.TokenVocabulary;
import dev.bdserve.tokenizer.Tokenizer;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Decides whether the engine takes a request, on the submitting thread, and builds what it needs to run: a request
 * that can never fit the model's context or the KV pool, names an unknown token or adapter, finds the queue full, or
 * asks for structured output the tokenizer cannot give is refused with the {@link EngineException} the client sees,
 * before it reaches the step loop. The engine keeps its own refusals (a failed group, a shutdown) in front of these.
 *
 * <p>It also owns what every accepted request's {@link OutputProcessor} shares: the EOS ids, the mask of the padded
 * vocabulary and the tokenizer's vocabulary as token bytes for constraints.
 *
 * <p>Thread-safety: {@link #admit} and {@link #vocabulary} may be called from any thread.
 */
final class Admission {
    /**
     * A request let in: its adapter (null for the base model), its new tokens at most and its output.
     *
     * @param maxTokens max_tokens, or up to the context limit when the request gives none
     */
    record Admitted(AdapterResidency.Entry adapter, int maxTokens, OutputProcessor output) {}

    private final Tokenizer tokenizer;
    private final LlamaConfig model;
    private final EngineConfig config;
    private final AtomicInteger queued;                         // the engine's count of submitted, not yet finished
    private final int[] eosIds;
    private final TokenMask vocabMask;                          // the tokenizer's ids; null when it knows every row
    private volatile TokenVocabulary vocabulary;                // for constraints; built on the first constrained request
    private final Object vocabularyLock = new Object();

    /**
     * @param queued the engine's count of requests submitted and not yet finished, against the queue bound
     * @throws IllegalArgumentException when the tokenizer knows more ids than the model has rows of logits
     */
    Admission(Tokenizer tokenizer, LlamaConfig model, EngineConfig config, AtomicInteger queued) {
        this.tokenizer = tokenizer;
        this.model = model;
        this.config = config;
        this.queued = queued;
        this.vocabMask = TokenMask.forVocabularies(tokenizer.vocabSize(), model.vocabSize(), tokenizer.unusedIds());
        this.eosIds = OutputProcessor.eosIds(tokenizer, model);
    }

    /**
     * Checks a request against the model, its adapters, the queue bound and the KV pool, and builds its output.
     * Throws {@link EngineException} (400, 404, 429) when it cannot be accepted.
     */
    Admitted admit(EngineRequest r, AdapterResidency adapters, BlockManager blocks) {
        int ctx = model.maxPositions();
        int p = r.prompt().length;
        if (p >= ctx || r.maxTokens() > 0 && p + r.maxTokens() > ctx)
            throw new EngineException(400, "This model's maximum context length is " + ctx + " tokens. However, you requested "
                    + (p + Math.max(r.maxTokens(), 0)) + " tokens (" + p + " in the messages, " + Math.max(r.maxTokens(), 0)
                    + " in the completion). Please reduce the length of the messages or completion.");
        for (int t : r.prompt())
            if (t < 0 || t >= model.vocabSize()) throw new EngineException(400, "Token id " + t + " is out of vocabulary (size " + model.vocabSize() + ").");
        AdapterResidency.Entry a = null;
        if (r.adapter() != null && (a = adapters.lookup(r.adapter())) == null)
            throw new EngineException(404, "The model `" + r.adapter() + "` does not exist.");
        if (queued.get() >= config.maxWaiting() + config.maxNumSeqs())
            throw new EngineException(429, "The server is overloaded: " + queued.get() + " requests are queued. Please retry later.");
        int maxTokens = r.maxTokens() >= 0 ? r.maxTokens() : ctx - p;
        if (blocks.blocksFor(p + maxTokens) > blocks.numBlocks())
            throw new EngineException(400, "The request needs up to " + (p + maxTokens) + " tokens of KV cache, more than the "
                    + blocks.numBlocks() * blocks.blockSize() + " the server's KV cache holds. Please reduce the prompt or max_tokens.");
        TokenMatcher matcher = null;
        if (r.constraint() != null) {
            try {
                matcher = r.constraint().newMatcher(vocabulary());
            } catch (UnsupportedOperationException e) {
                throw new EngineException(400, "Structured output is not available with this model's tokenizer: " + e.getMessage(), e);
            }
        }
        return new Admitted(a, maxTokens, new OutputProcessor(r.params(), tokenizer, eosIds, vocabMask, Math.min(maxTokens, ctx - p), matcher));
    }

    /**
     * The tokenizer's vocabulary as token bytes, for structured-output masks: built once, on the first constrained
     * request (it takes seconds on a large vocabulary, so not at start), on that request's thread.
     */
    TokenVocabulary vocabulary() {
        TokenVocabulary v = vocabulary;
        if (v == null) {
            synchronized (vocabularyLock) {
                if ((v = vocabulary) == null) vocabulary = v = TokenVocabulary.of(tokenizer);
            }
        }
        return v;
    }
}
