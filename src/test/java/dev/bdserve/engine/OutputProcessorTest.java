package dev.bdserve.engine;

import dev.bdserve.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** One request's output without a model: penalties, masks, logprobs, stop rules and the text held back. */
class OutputProcessorTest {
    /** Ids 0–3 spell "a", "b", "c", " "; id 4 is EOS; id 5 spells "!". */
    static final String[] PIECES = {"a", "b", "c", " ", "", "!"};
    static final Tokenizer CHARS = new Tokenizer() {
        public int vocabSize() { return PIECES.length; }
        public int bosId() { return -1; }
        public int[] eosIds() { return new int[]{4}; }
        public int[] encode(String text, boolean addBos) { throw new UnsupportedOperationException(); }
        public String decode(int[] ids) {
            StringBuilder b = new StringBuilder();
            for (int i : ids) b.append(PIECES[i]);
            return b.toString();
        }
        public StreamDecoder newStreamDecoder() {
            return new StreamDecoder() {
                public String push(int id) { return PIECES[id]; }
                public String flush() { return ""; }
            };
        }
    };

    static OutputProcessor out(SamplingParams p, TokenMask mask, int limit) { return new OutputProcessor(p, CHARS, new int[]{4}, mask, limit); }

    /** A row whose argmax is {@code id} (logit 5, the others 0). */
    static float[] favour(int id) {
        float[] row = new float[PIECES.length];
        row[id] = 5;
        return row;
    }

    /**
     * Presence 0.3 and frequency 0.2 on the row [2.0, 1.9, 1.0, 0.5, -9, -9], greedy, by hand: token 0 first; then
     * 0 has 2.0 − (0.3 + 0.2) = 1.5 < 1.9, so 1; then 1.5 > 1.9 − 0.5 = 1.4, so 0; then 2.0 − 0.7 = 1.3 < 1.4, so 1;
     * then 1.3 > 1.9 − 0.7 = 1.2, so 0. The logprob of that fifth token is 1.3 − log(e^1.3 + e^1.2 + e^1.0 + e^0.5 + 2e^−9).
     */
    @Test
    void penaltiesFollowTheHandComputedExample() {
        float[] base = {2.0f, 1.9f, 1.0f, 0.5f, -9f, -9f};
        SamplingParams p = new SamplingParams(0, 0, 1, 0, null, List.of(), false, 0.3, 0.2, 1);
        OutputProcessor o = out(p, null, 10);
        int[] want = {0, 1, 0, 1, 0};
        OutputProcessor.Step last = null;
        for (int w : want) {
            last = o.next(base.clone(), 0, base.length);
            assertEquals(w, last.token(), "after " + o.text());
        }
        double lse = Math.log(Math.exp(1.3) + Math.exp(1.2) + Math.exp(1.0) + Math.exp(0.5) + 2 * Math.exp(-9));
        assertEquals(1.3 - lse, last.logprob(), 1e-5);
        assertEquals(0, last.top().getFirst().token());
        assertEquals("ababa", o.text());
        assertNull(o.finish());
        // without penalties the same row gives token 0 every time
        OutputProcessor plain = out(SamplingParams.greedy(), null, 10);
        for (int i = 0; i < 5; i++) assertEquals(0, plain.next(base.clone(), 0, base.length).token());
    }

    @Test
    void aMaskKeepsTheArgmaxOffDisallowedIds() {
        OutputProcessor o = out(SamplingParams.greedy(), TokenMask.below(4), 10);
        float[] row = favour(5);                        // the best id is past the mask
        row[2] = 1;
        assertEquals(2, o.next(row, 0, row.length).token());
        java.util.BitSet allowed = new java.util.BitSet();
        allowed.set(1);
        allowed.set(3);
        OutputProcessor only = out(new SamplingParams(1.0, 0, 1, 0, 7L, List.of(), true), TokenMask.of(allowed), 200);
        for (int i = 0; i < 200; i++) {
            int t = only.next(new float[]{3, 0, 3, 0, 3, 3}, 0, PIECES.length).token();
            assertTrue(t == 1 || t == 3, "sampled " + t);
        }
    }

    @Test
    void eosEndsWithStopAndNothingAppended() {
        OutputProcessor o = out(SamplingParams.greedy(), null, 10);
        assertEquals(0, o.next(favour(0), 0, 6).token());
        OutputProcessor.Step eos = o.next(favour(4), 0, 6);
        assertEquals(-1, eos.token());
        assertEquals("stop", eos.finish());
        assertArrayEquals(new int[]{0}, o.tokens());
        assertThrows(IllegalStateException.class, () -> o.next(favour(0), 0, 6), "no token after the end");
        // ignore_eos: EOS is an ordinary token
        OutputProcessor ignoring = out(new SamplingParams(0, 0, 1, 0, null, List.of(), true), null, 2);
        assertEquals(4, ignoring.next(favour(4), 0, 6).token());
        assertEquals("length", ignoring.next(favour(4), 0, 6).finish());
    }

    @Test
    void theLimitEndsWithLength() {
        OutputProcessor o = out(SamplingParams.greedy(), null, 3);
        assertNull(o.next(favour(0), 0, 6).finish());
        assertNull(o.next(favour(1), 0, 6).finish());
        OutputProcessor.Step s = o.next(favour(2), 0, 6);
        assertEquals("length", s.finish());
        assertEquals("c", s.text());
        assertEquals("abc", o.text());
    }

    /**
     * Stop strings over random token streams: the text handed out (token texts, then the rest) equals the text up to
     * the earliest stop string found by scanning the whole text, and never shows a stop string's start that the end
     * then cuts.
     */
    @Test
    void stopStringsMatchLikeAWholeTextScanAndHoldBackTheirStart() {
        SplittableRandom r = new SplittableRandom(11);
        for (int trial = 0; trial < 2000; trial++) {
            List<String> stops = new ArrayList<>();
            for (int k = 1 + r.nextInt(3); k > 0; k--) {
                StringBuilder s = new StringBuilder();
                for (int n = 1 + r.nextInt(3); n > 0; n--) s.append("abc ".charAt(r.nextInt(4)));
                stops.add(s.toString());
            }
            OutputProcessor o = out(new SamplingParams(0, 0, 1, 0, null, stops, true), null, 40);
            StringBuilder all = new StringBuilder(), shown = new StringBuilder();
            String finish = null;
            while (finish == null) {
                int id = r.nextInt(4);
                all.append(PIECES[id]);
                OutputProcessor.Step s = o.next(favour(id), 0, 6);
                shown.append(s.text());
                finish = s.finish();
                if (finish == null) assertTrue(all.toString().startsWith(shown.toString()));
            }
            shown.append(o.takeRest());
            int cut = -1;
            for (String s : stops) {
                int i = all.indexOf(s);
                if (i >= 0 && (cut < 0 || i < cut)) cut = i;
            }
            String want = cut >= 0 ? all.substring(0, cut) : all.toString();
            assertEquals(cut >= 0 ? "stop" : "length", finish, stops + " over " + all);
            assertEquals(want, o.text(), stops + " over " + all);
            assertEquals(want, shown.toString(), stops + " over " + all);
        }
    }
}
