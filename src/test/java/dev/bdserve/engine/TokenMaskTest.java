package dev.bdserve.engine;

import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class TokenMaskTest {
    /** Random allowed sets over random vocabularies: exactly the disallowed ids become −Inf, the others keep their logit. */
    @Test
    void applyMasksExactlyTheDisallowedIds() {
        SplittableRandom r = new SplittableRandom(4);
        for (int trial = 0; trial < 500; trial++) {
            int vocab = 1 + r.nextInt(300), off = r.nextInt(5);
            BitSet allowed = new BitSet();
            for (int i = 0; i < vocab + 10; i++) if (r.nextInt(4) == 0) allowed.set(i);
            allowed.set(r.nextInt(vocab));
            TokenMask m = trial % 3 == 0 ? TokenMask.below(1 + r.nextInt(vocab)) : TokenMask.of(allowed);
            float[] logits = new float[off + vocab + 3];
            for (int i = 0; i < logits.length; i++) logits[i] = (float) r.nextDouble(-5, 5);
            float[] before = logits.clone();
            m.apply(logits, off, vocab);
            for (int i = 0; i < logits.length; i++) {
                boolean inRow = i >= off && i < off + vocab;
                float want = inRow && !m.allows(i - off) ? Float.NEGATIVE_INFINITY : before[i];
                assertEquals(want, logits[i], "id " + (i - off) + " of " + vocab + " (trial " + trial + ")");
            }
        }
    }

    @Test
    void aPaddedModelVocabularyIsMaskedAndASmallerOneRefused() {
        assertNull(TokenMask.forVocabularies(300, 300));
        TokenMask pad = TokenMask.forVocabularies(280, 300);
        assertTrue(pad.allows(279));
        assertFalse(pad.allows(280));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TokenMask.forVocabularies(301, 300));
        assertTrue(e.getMessage().contains("301 token ids") && e.getMessage().contains("only 300 rows"), e.getMessage());
        BitSet unused = new BitSet();
        unused.set(7);
        TokenMask both = TokenMask.forVocabularies(280, 300, unused);
        assertTrue(both.allows(6) && both.allows(279));
        assertFalse(both.allows(7) || both.allows(280));
        assertThrows(IllegalArgumentException.class, () -> TokenMask.of(new BitSet()));
        assertThrows(IllegalArgumentException.class, () -> TokenMask.below(0));
    }
}
