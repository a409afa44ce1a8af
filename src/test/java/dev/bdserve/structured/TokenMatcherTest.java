package dev.bdserve.structured;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.BitSet;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The per-request matcher on a small hand-made vocabulary: tokens spanning several grammar symbols and split UTF-8
 * characters, special tokens never allowed, EOS only where the output may end, refused tokens leaving the state as
 * it was, a constraint this vocabulary cannot complete reported dead, and matchers moving to a fresh state space.
 */
class TokenMatcherTest {
    // 0 EOS (special), 1 BOS (special), then text tokens
    static final String[] TEXT = {null, null, "{\"", "a", "\":", " 1", "}", "1}", "é", "\u00c3", "\":1}", "x", ""};

    static TokenVocabulary vocab() {
        byte[][] b = new byte[TEXT.length + 2][];
        for (int i = 0; i < TEXT.length; i++) b[i] = TEXT[i] == null ? null : TEXT[i].getBytes(StandardCharsets.UTF_8);
        b[TEXT.length] = new byte[]{(byte) 0xC3};          // first byte of é
        b[TEXT.length + 1] = new byte[]{(byte) 0xA9, '"'}; // last byte of é, then a quote
        return TokenVocabulary.of(b, new int[]{0});
    }

    static BitSet ids(int... ids) {
        BitSet b = new BitSet();
        for (int i : ids) b.set(i);
        return b;
    }

    @Test
    void tokensSpanSymbolsAndSplitCharacters() throws Exception {
        TokenVocabulary v = vocab();
        Constraint c = Constraint.jsonSchema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"],\"additionalProperties\":false}");
        TokenMatcher m = c.newMatcher(v);
        assertEquals(ids(2), m.allowedTokens());
        assertFalse(m.advance(3), "a disallowed token");
        assertTrue(m.advance(2));
        assertEquals(ids(3), m.allowedTokens());
        assertTrue(m.advance(3));
        assertEquals(ids(4, 10), m.allowedTokens(), "\":1} spans the key's end, the colon, the value and the brace");
        assertFalse(m.advance(0), "EOS before the object is complete");
        assertTrue(m.advance(10));
        assertTrue(m.isAccepting());
        assertEquals(ids(0), m.allowedTokens(), "only EOS (no token here is whitespace alone)");
        assertTrue(m.advance(0));
        assertTrue(m.isFinished());
        assertTrue(m.allowedTokens().isEmpty());

        Constraint s = Constraint.regex("é\"");
        TokenMatcher e = s.newMatcher(v);
        assertEquals(ids(8, TEXT.length), e.allowedTokens(), "é, and its first byte alone; not Ã, which shares that byte");
        assertTrue(e.advance(TEXT.length));
        assertEquals(ids(TEXT.length + 1), e.allowedTokens(), "the rest of é with the quote");
        assertTrue(e.advance(TEXT.length + 1));
        assertEquals(ids(0), e.allowedTokens());
        assertEquals(e.allowedTokensSlow(), e.allowedTokens());
    }

    @Test
    void specialAndEmptyTokensAreNeverAllowed() throws Exception {
        TokenVocabulary v = vocab();
        for (Constraint c : List.of(Constraint.regex("(.|\\n)*"), Constraint.jsonObject(), Constraint.grammar("root ::= [^x]*"))) {
            TokenMatcher m = c.newMatcher(v);
            BitSet a = m.allowedTokens();
            assertFalse(a.get(1), "BOS");
            assertFalse(a.get(12), "the empty token");
            assertFalse(m.advance(1));
            assertFalse(m.advance(12));
        }
    }

    @Test
    void deadWhenNoTokenFits() throws Exception {
        TokenVocabulary v = vocab();
        TokenMatcher m = Constraint.regex("1\\d{2}").newMatcher(v);
        assertTrue(m.allowedTokens().isEmpty(), "no token is a lone 1");
        assertTrue(m.isDead());
        TokenMatcher ok = Constraint.regex("x+").newMatcher(v);
        assertFalse(ok.isDead());
    }

    @Test
    void matchersMoveToAFreshStateSpaceWhenOneIsFull() throws Exception {
        TokenVocabulary v = MaskTwinTest.randomVocabulary(new java.util.Random(3), 2000);
        Constraint capped = Constraint.jsonSchema(JsonSchemaConstraintTest.NESTED), plain = Constraint.jsonSchema(JsonSchemaConstraintTest.NESTED);
        capped.capStates(50);
        java.util.Random r = new java.util.Random(5);
        TokenMatcher a = capped.newMatcher(v), b = plain.newMatcher(v);
        StateSpace first = a.state().space;
        for (int step = 0; step < 60; step++) {
            BitSet ma = a.allowedTokens(), mb = b.allowedTokens();
            assertEquals(mb, ma, "step " + step);
            ma.clear(0);
            if (ma.isEmpty()) break;
            int pick = r.nextInt(ma.cardinality()), id = ma.nextSetBit(0);
            for (int i = 0; i < pick; i++) id = ma.nextSetBit(id + 1);
            assertTrue(a.advance(id));
            assertTrue(b.advance(id));
        }
        assertNotSame(first, a.state().space, "the capped constraint never started a new space");
    }

    /** Matchers on one shared constraint, in several threads at once, see the masks a lone matcher sees. */
    @Test
    void aSharedConstraintServesThreadsAtOnce() throws Exception {
        TokenVocabulary v = MaskTwinTest.randomVocabulary(new java.util.Random(9), 3000);
        int threads = 4, steps = 40;
        int[][] paths = new int[threads][steps];
        java.util.List<java.util.List<BitSet>> want = new java.util.ArrayList<>();
        for (int t = 0; t < threads; t++) {
            java.util.Random r = new java.util.Random(t);
            TokenMatcher m = Constraint.jsonSchema(JsonSchemaConstraintTest.NESTED).newMatcher(v);
            java.util.List<BitSet> masks = new java.util.ArrayList<>();
            for (int s = 0; s < steps; s++) {
                BitSet a = m.allowedTokens();
                masks.add(a);
                a = (BitSet) a.clone();
                a.clear(0);
                if (a.isEmpty()) { paths[t][s] = -1; break; }
                int pick = r.nextInt(a.cardinality()), id = a.nextSetBit(0);
                for (int i = 0; i < pick; i++) id = a.nextSetBit(id + 1);
                paths[t][s] = id;
                m.advance(id);
            }
            want.add(masks);
        }
        Constraint shared = Constraint.jsonSchema(JsonSchemaConstraintTest.NESTED);
        shared.capStates(400); // spaces fill and are replaced while the threads run
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(threads)) {
            java.util.List<java.util.concurrent.Future<?>> done = new java.util.ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (int rep = 0; rep < 5; rep++) {
                        TokenMatcher m = shared.newMatcher(v);
                        for (int s = 0; s < want.get(thread).size(); s++) {
                            assertEquals(want.get(thread).get(s), m.allowedTokens(), "thread " + thread + " step " + s);
                            if (paths[thread][s] < 0) break;
                            assertTrue(m.advance(paths[thread][s]));
                        }
                    }
                    return null;
                }));
            }
            for (var f : done) f.get();
        }
    }
}
