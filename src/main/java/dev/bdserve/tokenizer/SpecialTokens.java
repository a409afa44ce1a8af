package dev.bdserve.tokenizer;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * The tokens a text may name by their spelling (a GGUF vocabulary's CONTROL, USER_DEFINED and UNKNOWN tokens), and
 * the split of a text into plain fragments and those tokens, as llama.cpp's {@code tokenizer_st_partition} does:
 * longest spelling first, each one cut out of every fragment still plain, left to right.
 */
final class SpecialTokens {
    /** A piece of a split text: plain text to encode, or a token's id. */
    sealed interface Part permits Text, Token {}
    record Text(String text) implements Part {}
    record Token(int id) implements Part {}

    private final List<Map.Entry<String, Integer>> longestFirst;
    private final BitSet control;

    /** {@code spellings}: the tokens text may name; {@code control}: those of them decoding skips. */
    SpecialTokens(Map<String, Integer> spellings, BitSet control) {
        this.control = (BitSet) control.clone();
        longestFirst = new ArrayList<>(spellings.entrySet().stream().filter(e -> !e.getKey().isEmpty()).toList());
        longestFirst.sort(Comparator.comparingInt((Map.Entry<String, Integer> e) -> -e.getKey().length()).thenComparing(Map.Entry::getKey));
    }

    boolean isEmpty() { return longestFirst.isEmpty(); }

    boolean isControl(int id) { return control.get(id); }

    List<Part> split(String text) {
        List<Part> parts = new ArrayList<>();
        if (!text.isEmpty()) parts.add(new Text(text));
        for (Map.Entry<String, Integer> s : longestFirst) {
            String spelling = s.getKey();
            List<Part> next = new ArrayList<>(parts.size());
            for (Part p : parts) {
                if (!(p instanceof Text(String t)) || !t.contains(spelling)) {
                    next.add(p);
                    continue;
                }
                int from = 0;
                for (int at = t.indexOf(spelling); at >= 0; at = t.indexOf(spelling, from)) {
                    if (at > from) next.add(new Text(t.substring(from, at)));
                    next.add(new Token(s.getValue()));
                    from = at + spelling.length();
                }
                if (from < t.length()) next.add(new Text(t.substring(from)));
            }
            parts = next;
        }
        return parts;
    }
}
