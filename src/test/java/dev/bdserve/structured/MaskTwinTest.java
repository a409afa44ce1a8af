package dev.bdserve.structured;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The fast token mask (memoized state transitions, trie scan, per-state cache) equals the slow twin (every token's
 * bytes run alone on the plain stack recognizer) in random states of several constraints, on the real Qwen3, Llama-3
 * and Gemma-3 vocabularies and on random byte vocabularies that split UTF-8 characters anywhere.
 */
class MaskTwinTest {
    static final String ARITH = """
            root ::= expr
            expr ::= term (("+" | "-") term)*
            term ::= factor (("*" | "/") factor)*
            factor ::= [0-9]{1,3} | "(" ws expr ws ")" | "-" factor
            ws ::= [ ]?
            """;

    static List<Constraint> constraints() throws ConstraintException {
        return List.of(
                Constraint.jsonSchema(JsonSchemaConstraintTest.NESTED),
                Constraint.jsonObject(),
                Constraint.regex("[A-Za-z]+( [0-9]{1,3}){0,3}\\.|é+[^a-z]?|\\d{2}-\\w{2,4}"),
                Constraint.grammar(ARITH),
                Constraint.choice(List.of("yes", "no", "maybe 😀", "Zürich")));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"qwen3", "llama3", "gemma3"})
    void fastMaskEqualsSlowTwinOnRealVocabularies(String name) throws Exception {
        TokenVocabulary v = Walks.real(name);
        Random r = new Random(name.hashCode());
        for (Constraint c : constraints()) {
            for (TokenMatcher m : randomStates(c, v, r, 2)) {
                BitSet fast = m.allowedTokens(), slow = m.allowedTokensSlow();
                assertEquals(slow, fast, c.kind() + " on " + name + ": fast and slow masks differ");
                assertEquals(fast, m.allowedTokens(), "the cached mask differs");
            }
        }
    }

    @Test
    void fastMaskEqualsSlowTwinOnRandomByteVocabularies() throws Exception {
        Random r = new Random(42);
        for (int round = 0; round < 4; round++) {
            TokenVocabulary v = randomVocabulary(r, 3000);
            for (Constraint c : constraints())
                for (TokenMatcher m : randomStates(c, v, r, 8))
                    assertEquals(m.allowedTokensSlow(), m.allowedTokens(), c.kind() + " round " + round);
        }
    }

    /** Matchers advanced by random allowed tokens: at the start and after 1..40 tokens. */
    static List<TokenMatcher> randomStates(Constraint c, TokenVocabulary v, Random r, int n) {
        List<TokenMatcher> out = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            TokenMatcher m = c.newMatcher(v);
            int steps = k == 0 ? 0 : 1 + r.nextInt(40);
            for (int s = 0; s < steps; s++) {
                BitSet a = m.allowedTokens();
                for (int e : v.eosIds()) a.clear(e);
                if (a.isEmpty()) break;
                int pick = r.nextInt(a.cardinality()), id = a.nextSetBit(0);
                for (int i = 0; i < pick; i++) id = a.nextSetBit(id + 1);
                assertTrue(m.advance(id));
            }
            out.add(m);
        }
        return out;
    }

    /** All 256 single bytes, then random strings of JSON-ish characters, UTF-8 cut at random places; id 0 a special EOS. */
    static TokenVocabulary randomVocabulary(Random r, int n) {
        String alphabet = "{}[]\":,  \n\t0123456789-+.eEabcyesnoZürich東京😀éAZ()*/tfnul\\";
        int[] cps = alphabet.codePoints().toArray();
        byte[][] b = new byte[n][];
        for (int i = 0; i < 256; i++) b[i + 1] = new byte[]{(byte) i};
        for (int i = 257; i < n; i++) {
            StringBuilder s = new StringBuilder();
            int len = 1 + r.nextInt(6);
            for (int k = 0; k < len; k++) s.appendCodePoint(cps[r.nextInt(cps.length)]);
            byte[] x = s.toString().getBytes(StandardCharsets.UTF_8);
            int from = r.nextInt(3) == 0 ? r.nextInt(x.length) : 0, to = r.nextInt(3) == 0 ? from + 1 + r.nextInt(x.length - from) : x.length;
            b[i] = java.util.Arrays.copyOfRange(x, from, to);
        }
        return TokenVocabulary.of(b, new int[]{0});
    }
}
