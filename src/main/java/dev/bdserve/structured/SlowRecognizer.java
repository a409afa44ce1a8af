package dev.bdserve.structured;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The slow twin of {@link StateSpace} and {@link TokenVocabulary#fill}: the same stack semantics written plainly
 * (stacks as lists of positions, no interning, no tail-call shortcut, no memo, no trie), and the token mask by
 * running every token's bytes on its own. Tests check the fast path against it.
 */
final class SlowRecognizer {
    private final Grammar g;

    SlowRecognizer(Grammar g) { this.g = g; }

    /** The stacks after {@code bytes} from {@code stacks} (top first; the empty list accepts); empty when dead. */
    Set<List<Integer>> run(Set<List<Integer>> stacks, byte[] bytes) {
        Set<List<Integer>> cur = stacks;
        for (byte b : bytes) {
            Set<List<Integer>> next = new HashSet<>();
            for (List<Integer> s : cur) {
                if (s.isEmpty()) continue;
                int x = g.sym[s.getFirst()];
                if ((b & 0xFF) >= Grammar.lo(x) && (b & 0xFF) <= Grammar.hi(x)) {
                    List<Integer> t = new ArrayList<>(s);
                    t.set(0, s.getFirst() + 1);
                    expand(t, next);
                }
            }
            cur = next;
            if (cur.isEmpty()) break;
        }
        return cur;
    }

    Set<List<Integer>> start() {
        Set<List<Integer>> out = new HashSet<>();
        for (int a : g.alts[g.root]) expand(new ArrayList<>(List.of(a)), out);
        return out;
    }

    private void expand(List<Integer> s, Set<List<Integer>> out) {
        if (s.isEmpty()) { out.add(s); return; }
        int x = g.sym[s.getFirst()];
        if (x == Grammar.END) {
            expand(new ArrayList<>(s.subList(1, s.size())), out);
        } else if (Grammar.isTerminal(x)) {
            out.add(s);
        } else {
            for (int a : g.alts[Grammar.rule(x)]) {
                List<Integer> t = new ArrayList<>(s.size() + 1);
                t.add(a);
                t.add(s.getFirst() + 1);
                t.addAll(s.subList(1, s.size()));
                expand(t, out);
            }
        }
    }

    static Set<List<Integer>> of(List<int[]> stacks) {
        Set<List<Integer>> out = new HashSet<>();
        for (int[] s : stacks) {
            List<Integer> l = new ArrayList<>();
            for (int p : s) l.add(p);
            out.add(l);
        }
        return out;
    }

    static boolean accepts(Set<List<Integer>> stacks) { return stacks.contains(List.of()); }

    /** The allowed tokens from {@code stacks}: each token's bytes run alone; EOS ids when the stacks accept. */
    BitSet mask(Set<List<Integer>> stacks, TokenVocabulary v) {
        BitSet out = new BitSet(v.size());
        for (int id = 0; id < v.size(); id++) {
            byte[] b = v.bytes(id);
            if (b == null || b.length == 0) continue;
            if (!run(stacks, b).isEmpty()) out.set(id);
        }
        if (accepts(stacks)) for (int e : v.eosIds()) out.set(e);
        return out;
    }
}
