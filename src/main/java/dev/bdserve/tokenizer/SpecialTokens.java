package dev.bdserve.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The tokens a text may name by their spelling (a GGUF vocabulary's CONTROL, USER_DEFINED and UNKNOWN tokens), and
 * the split of a text into plain fragments and those tokens, as llama.cpp's {@code tokenizer_st_partition} does:
 * longest spelling (in UTF-8 bytes) first, each one cut out of every fragment still plain, left to right. A token
 * marked right-stripping (llama.cpp's RSTRIP attribute, which it gives Phi-3's special tokens) also removes the
 * ASCII whitespace (C's {@code isspace}) that follows it in its fragment, as Hugging Face's {@code rstrip} does.
 *
 * <p>Gemma names 6,400 tokens this way, so the split does not search the text once per spelling: one walk of a trie
 * of the spellings finds every occurrence, and the occurrences are then taken in the order above, each unless it
 * overlaps one taken before. That is the same split: an occurrence lies inside a plain fragment exactly when it
 * overlaps no token cut out earlier, and cutting left to right skips exactly the occurrences of the same spelling that
 * overlap the one cut before.
 */
final class SpecialTokens {
    /** A piece of a split text: plain text to encode, or a token's id. */
    sealed interface Part permits Text, Token {}
    record Text(String text) implements Part {}
    record Token(int id) implements Part {}

    /** A trie node: the spelling ending here (its rank in cutting order, -1: none) and the nodes one char further. */
    private static final class Node {
        Map<Character, Node> next;
        int rank = -1;
    }

    private final Node root = new Node();
    /** By rank: the token id and the spelling's length in chars. */
    private final int[] ids, lengths;
    private final BitSet control, rstrip;

    /** {@code spellings}: the tokens text may name; {@code control}: those of them decoding skips. */
    SpecialTokens(Map<String, Integer> spellings, BitSet control) { this(spellings, control, new BitSet()); }

    /** As {@link #SpecialTokens(Map, BitSet)}; {@code rstrip}: the tokens that remove the whitespace after them. */
    SpecialTokens(Map<String, Integer> spellings, BitSet control, BitSet rstrip) {
        this.control = (BitSet) control.clone();
        this.rstrip = (BitSet) rstrip.clone();
        List<Map.Entry<String, Integer>> order = new ArrayList<>(spellings.entrySet().stream().filter(e -> !e.getKey().isEmpty()).toList());
        order.sort(Comparator.comparingInt((Map.Entry<String, Integer> e) -> -e.getKey().getBytes(StandardCharsets.UTF_8).length)
                .thenComparing(Map.Entry::getKey));
        ids = new int[order.size()];
        lengths = new int[order.size()];
        for (int rank = 0; rank < order.size(); rank++) {
            String s = order.get(rank).getKey();
            ids[rank] = order.get(rank).getValue();
            lengths[rank] = s.length();
            Node n = root;
            for (int i = 0; i < s.length(); i++) {
                if (n.next == null) n.next = new HashMap<>(4);
                n = n.next.computeIfAbsent(s.charAt(i), c -> new Node());
            }
            n.rank = rank;
        }
    }

    boolean isEmpty() { return ids.length == 0; }

    boolean isControl(int id) { return control.get(id); }

    List<Part> split(String text) {
        int n = text.length();
        // every occurrence as (rank << 32 | start), so that sorting orders them as they are cut
        long[] found = new long[16];
        int count = 0;
        for (int start = 0; start < n; start++) {
            Node node = root;
            for (int i = start; i < n && node.next != null; i++) {
                node = node.next.get(text.charAt(i));
                if (node == null) break;
                if (node.rank >= 0) {
                    if (count == found.length) found = Arrays.copyOf(found, count * 2);
                    found[count++] = (long) node.rank << 32 | start;
                }
            }
        }
        if (count == 0) return n == 0 ? List.of() : List.of(new Text(text));
        Arrays.sort(found, 0, count);
        BitSet taken = new BitSet(n);  // cut out as a token, or stripped
        int[] cutAt = new int[n];      // rank + 1 of the token cut out starting here, -1: stripped, 0: plain
        for (int k = 0; k < count; k++) {
            int rank = (int) (found[k] >>> 32), start = (int) found[k], end = start + lengths[rank];
            if (overlaps(taken, start, end)) continue;
            taken.set(start, end);
            cutAt[start] = rank + 1;
            if (rstrip.get(ids[rank]))
                for (int i = end; i < n && !taken.get(i) && isSpace(text.charAt(i)); i++) {
                    taken.set(i);
                    cutAt[i] = -1;
                }
        }
        List<Part> parts = new ArrayList<>();
        int plain = 0;
        for (int i = 0; i < n; ) {
            if (cutAt[i] == 0) {
                i++;
                continue;
            }
            if (i > plain) parts.add(new Text(text.substring(plain, i)));
            if (cutAt[i] < 0) {
                i++;
            } else {
                int rank = cutAt[i] - 1;
                parts.add(new Token(ids[rank]));
                i += lengths[rank];
            }
            plain = i;
        }
        if (plain < n) parts.add(new Text(text.substring(plain)));
        return parts;
    }

    /** C's {@code isspace} in the C locale, which llama.cpp's stripping applies to the text's bytes. */
    private static boolean isSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    /** Whether any of {@code [start, end)} is set; spellings are short, so this looks at each. */
    private static boolean overlaps(BitSet taken, int start, int end) {
        for (int i = start; i < end; i++) if (taken.get(i)) return true;
        return false;
    }
}
