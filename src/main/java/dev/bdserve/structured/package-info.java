/**
 * Structured output: constraints on what a model may generate (a JSON schema, any JSON object, a regex, a llama.cpp
 * GBNF grammar, a list of choices), compiled once, then applied per decode step as a mask over the vocabulary.
 *
 * <h2>Using it (the engine and server side)</h2>
 * <pre>{@code
 * TokenVocabulary vocab = TokenVocabulary.of(tokenizer);          // once per model; immutable, shared
 * Constraint c = Constraint.jsonSchema(schemaJsonText);           // per request (throws ConstraintException → HTTP 400)
 * TokenMatcher m = c.newMatcher(vocab);                           // per sequence
 * // each decode step:
 * m.fillAllowed(allowed);            // BitSet of allowed ids; mask every other logit to -inf before sampling
 * if (allowed.isEmpty()) ...         // m.isDead(): the constraint cannot be completed: end the request with an error
 * int id = sample(...);
 * m.advance(id);                     // false if id was not allowed; an EOS is allowed only where m.isAccepting()
 * m.lastMaskNanos(), m.maskNanos()   // mask time, for metrics
 * }</pre>
 * Request fields map to factories: {@code response_format {"type":"json_object"}} → {@link
 * dev.bdserve.structured.Constraint#jsonObject()}; {@code {"type":"json_schema","json_schema":{"schema":S}}}, vLLM
 * {@code structured_outputs.json} / {@code guided_json} → {@link dev.bdserve.structured.Constraint#jsonSchema(String)}
 * (or the Jackson-tree overload); {@code regex} / {@code guided_regex} → {@link
 * dev.bdserve.structured.Constraint#regex}; {@code choice} / {@code guided_choice} → {@link
 * dev.bdserve.structured.Constraint#choice}; {@code grammar} / {@code guided_grammar} → {@link
 * dev.bdserve.structured.Constraint#grammar}. A tool call's arguments: {@code jsonSchema} of the function's
 * {@code parameters} (for {@code tool_choice} required or named: a schema of the call object whose {@code arguments}
 * is that schema). {@link dev.bdserve.structured.ConstraintException#location()} is where the source is wrong.
 *
 * <p>Cache {@code Constraint} objects by kind and source text: states and masks are memoized per constraint, so
 * requests that share a schema share the warm-up (a cold mask deep in a string can take tens of milliseconds on a
 * 128K vocabulary; warm ones take microseconds).
 *
 * <h2>How it works</h2>
 * Every kind becomes GBNF text ({@link dev.bdserve.structured.Constraint#gbnf()}): JSON Schema by {@code
 * JsonSchemaGrammar}, regexes through {@code dk.brics.automaton} DFAs written out as right-linear rules, choices as
 * literals. The GBNF is lowered to a grammar over bytes (UTF-8 sequences of each character class), and recognized
 * by sets of parse stacks as llama.cpp does, here interned so that each distinct set is one state object that
 * memoizes its 256 byte transitions and its token mask: a lazily built DFA over the states the inputs reach. A mask
 * is one scan of a depth-first byte trie of the vocabulary that skips every subtree whose prefix is impossible, so
 * tokens spanning several grammar symbols or a part of a UTF-8 character are handled byte by byte. Special tokens
 * (no output bytes) are never allowed, EOS only in accepting states. The slow twin (each token run alone on a plain
 * stack recognizer) is checked against the fast path in the tests.
 *
 * <p>Thread-safety: {@code Constraint} and {@code TokenVocabulary} are thread-safe and shareable; a {@code
 * TokenMatcher} belongs to one sequence.
 */
package dev.bdserve.structured;
