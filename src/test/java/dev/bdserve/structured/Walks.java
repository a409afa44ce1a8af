package dev.bdserve.structured;

import dev.bdserve.model.gguf.GgufTestFiles;
import dev.bdserve.tokenizer.HfTokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.*;

/** Shared helpers: real vocabularies, whole-text recognition by the fast and the slow recognizer, random walks. */
final class Walks {
    private Walks() {}

    private static final Map<String, TokenVocabulary> VOCABS = new ConcurrentHashMap<>();

    /** The vocabulary of a real tokenizer.json ({@code qwen3}, {@code llama3}, {@code llama2}, {@code gemma3}), cached. */
    static TokenVocabulary real(String name) {
        return VOCABS.computeIfAbsent(name, n -> {
            try (HfTokenizer t = HfTokenizer.load(GgufTestFiles.realTokenizer(n))) {
                return TokenVocabulary.of(t);
            }
        });
    }

    /**
     * Whether {@code c} accepts the whole of {@code text}, fed byte by byte; the fast recognizer and the slow twin must
     * agree.
     */
    static boolean accepts(Constraint c, String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        TokenMatcher m = c.newMatcher(TokenVocabulary.of(new byte[][]{null}, new int[]{0}));
        boolean fast = true;
        for (byte x : b) {
            if (!m.advanceBytes(new byte[]{x})) { fast = false; break; }
        }
        fast = fast && m.isAccepting();
        SlowRecognizer slow = new SlowRecognizer(c.grammar());
        Set<java.util.List<Integer>> end = slow.run(slow.start(), b);
        assertEquals(SlowRecognizer.accepts(end), fast, "fast and slow recognizers disagree on " + text);
        return fast;
    }

    /**
     * A random walk through the allowed tokens until EOS (taken with probability 1/2 where allowed): the text, or
     * null after {@code maxTokens} tokens. Each mask is checked to be non-empty and to hold only tokens the matcher
     * then takes.
     */
    static String walk(Constraint c, TokenVocabulary v, Random r, int maxTokens, List<Long> maskNanos) {
        return walk(c, v, r, maxTokens, maskNanos, true);
    }

    /** As above; without {@code takeEos}, EOS only when nothing else is allowed. */
    static String walk(Constraint c, TokenVocabulary v, Random r, int maxTokens, List<Long> maskNanos, boolean takeEos) {
        return walk(c, v, r, maxTokens, maskNanos, null, takeEos);
    }

    /** As above, also collecting each mask's thread CPU time in {@code cpuNanos} (when not null). */
    static String walk(Constraint c, TokenVocabulary v, Random r, int maxTokens, List<Long> maskNanos, List<Long> cpuNanos, boolean takeEos) {
        var threads = java.lang.management.ManagementFactory.getThreadMXBean();
        TokenMatcher m = c.newMatcher(v);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BitSet allowed = new BitSet(v.size());
        int eos = v.eosIds()[0];
        for (int step = 0; step < maxTokens; step++) {
            long cpu0 = cpuNanos == null ? 0 : threads.getCurrentThreadCpuTime();
            m.fillAllowed(allowed);
            if (cpuNanos != null) cpuNanos.add(threads.getCurrentThreadCpuTime() - cpu0);
            if (maskNanos != null) maskNanos.add(m.lastMaskNanos());
            assertFalse(allowed.isEmpty(), "dead after '" + out.toString(StandardCharsets.UTF_8) + "'");
            int id;
            if (allowed.get(eos) && takeEos && r.nextBoolean()) id = eos;
            else {
                BitSet choice = (BitSet) allowed.clone();
                for (int e : v.eosIds()) choice.clear(e);
                if (choice.isEmpty()) id = eos;
                else {
                    int k = r.nextInt(choice.cardinality());
                    id = choice.nextSetBit(0);
                    for (int i = 0; i < k; i++) id = choice.nextSetBit(id + 1);
                }
            }
            assertTrue(m.advance(id), "an allowed token " + id + " was refused");
            if (m.isFinished()) return out.toString(StandardCharsets.UTF_8);
            out.writeBytes(v.bytes(id));
        }
        return null;
    }

    /** Several walks that must all end; their texts. */
    static List<String> walks(Constraint c, TokenVocabulary v, long seed, int n, int maxTokens) {
        Random r = new Random(seed);
        List<String> texts = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            String t = walk(c, v, r, maxTokens, null);
            assertNotNull(t, "walk " + k + " did not reach EOS within " + maxTokens + " tokens");
            texts.add(t);
        }
        return texts;
    }
}
