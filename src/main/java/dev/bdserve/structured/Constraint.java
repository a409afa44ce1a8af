package dev.bdserve.structured;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * A compiled output constraint: the output must be a string of a language given by a JSON schema, a regex, a GBNF
 * grammar or a list of choices. Every kind compiles to GBNF ({@link #gbnf}, for logs and debugging) and then to a
 * byte-level {@link Grammar}. Immutable in what it accepts and thread-safe: build it once per request (or cache it by
 * its source text) and start a {@link TokenMatcher} per sequence. The states and masks it memoizes are shared by all
 * its matchers.
 */
public final class Constraint {
    private final String kind, gbnf;
    private final Grammar grammar;
    private volatile StateSpace space;
    private volatile int stateCap = StateSpace.MAX_STATES;

    private Constraint(String kind, String gbnf) throws ConstraintException {
        this.kind = kind;
        this.gbnf = gbnf;
        this.grammar = Grammar.ofGbnf(gbnf);
        this.space = new StateSpace(grammar);
    }

    /** A JSON Schema (a JSON object as text; see {@link JsonSchemaGrammar} for what is supported). */
    public static Constraint jsonSchema(String schema) throws ConstraintException {
        return new Constraint("json_schema", JsonSchemaGrammar.toGbnf(schema));
    }

    /** A JSON Schema given as a Jackson tree. */
    public static Constraint jsonSchema(JsonNode schema) throws ConstraintException {
        return new Constraint("json_schema", JsonSchemaGrammar.toGbnf(schema));
    }

    /** Any JSON object ({@code response_format: {"type": "json_object"}}). */
    public static Constraint jsonObject() {
        try {
            return new Constraint("json_object", JsonSchemaGrammar.anyObjectGbnf());
        } catch (ConstraintException e) {
            throw new IllegalStateException("the built-in JSON grammar does not compile: " + e.getMessage(), e);
        }
    }

    /** A regular expression, matched against the whole output (see {@link Regex} for the subset). */
    public static Constraint regex(String regex) throws ConstraintException {
        return new Constraint("regex", Regex.toGbnf(regex));
    }

    /** A llama.cpp GBNF grammar whose start rule is {@code root}. */
    public static Constraint grammar(String gbnf) throws ConstraintException {
        return new Constraint("grammar", gbnf);
    }

    /** Exactly one of {@code choices} (non-empty strings). */
    public static Constraint choice(List<String> choices) throws ConstraintException {
        if (choices == null || choices.isEmpty()) throw new ConstraintException("choice: the list of choices is empty", null);
        StringBuilder g = new StringBuilder("root ::= ");
        for (int i = 0; i < choices.size(); i++) {
            String c = choices.get(i);
            if (c == null || c.isEmpty()) throw new ConstraintException("choice: choice " + i + " is empty", "choice " + i);
            if (i > 0) g.append(" | ");
            g.append(literal(c));
        }
        return new Constraint("choice", g.toString());
    }

    /** "json_schema", "json_object", "regex", "grammar" or "choice". */
    public String kind() { return kind; }

    /** The GBNF this constraint was compiled from. */
    public String gbnf() { return gbnf; }

    /** A matcher at the start of the output, masking over {@code vocab}. */
    public TokenMatcher newMatcher(TokenVocabulary vocab) {
        return new TokenMatcher(this, vocab, space().start());
    }

    Grammar grammar() { return grammar; }

    /** Caps the memoized states per space (tests: to exercise moving to a fresh space). */
    void capStates(int cap) {
        stateCap = cap;
        space = new StateSpace(grammar, cap);
    }

    /** The current state space; a full one is replaced by a fresh one (its matchers move over as they go on). */
    StateSpace space() {
        StateSpace s = space;
        if (s.full()) {
            synchronized (this) {
                if (space.full()) space = new StateSpace(grammar, stateCap);
                s = space;
            }
        }
        return s;
    }

    /** {@code s} as a GBNF string literal. */
    static String literal(String s) {
        StringBuilder b = new StringBuilder("\"");
        s.codePoints().forEach(cp -> {
            switch (cp) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (cp < 0x20 || cp == 0x7F) b.append(String.format("\\x%02X", cp));
                    else b.appendCodePoint(cp);
                }
            }
        });
        return b.append('"').toString();
    }
}
