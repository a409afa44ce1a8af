package dev.bdserve.structured;

import dev.bdserve.structured.Gbnf.Alt;
import dev.bdserve.structured.Gbnf.Cls;
import dev.bdserve.structured.Gbnf.Expr;
import dev.bdserve.structured.Gbnf.Lit;
import dev.bdserve.structured.Gbnf.Ref;
import dev.bdserve.structured.Gbnf.Rep;
import dev.bdserve.structured.Gbnf.Seq;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A context-free grammar over bytes, lowered from {@link Gbnf} rules: every rule is a list of alternatives, every
 * alternative a sequence of symbols, each a byte range or a rule reference. Code point literals and classes become
 * their UTF-8 byte sequences (a class: one alternative per run of byte ranges, RE2's UTF-8 range splitting), so a
 * token may end inside a character; repetition becomes right-recursive helper rules ({@code x{2,4}} is
 * {@code x x o2} with {@code o2 ::= x o1 | ε}). Left recursion, which a top-down matcher cannot run, is refused.
 *
 * <p>Symbols live in one array: an alternative is its symbols followed by {@link #END}; a symbol ≥ 0 is the byte
 * range {@code lo | hi << 8}, a symbol ≤ -2 the rule {@code -2 - symbol}.
 */
final class Grammar {
    static final int END = -1;
    /** A cap on the lowered size, against {@code x{100000}} of big expressions. */
    static final int MAX_SYMBOLS = 4_000_000;

    final int[] sym;
    final int[][] alts;
    final String[] names;
    final int root;

    private Grammar(int[] sym, int[][] alts, String[] names, int root) {
        this.sym = sym;
        this.alts = alts;
        this.names = names;
        this.root = root;
    }

    static boolean isTerminal(int s) { return s >= 0; }

    static int lo(int s) { return s & 0xFF; }

    static int hi(int s) { return (s >>> 8) & 0xFF; }

    static int rule(int s) { return -2 - s; }

    /** Parses and lowers GBNF text; the start rule is {@code root}. */
    static Grammar ofGbnf(String gbnf) throws ConstraintException {
        return lower(Gbnf.parse(gbnf), "root");
    }

    static Grammar lower(Map<String, Expr> rules, String start) throws ConstraintException {
        Lowering l = new Lowering(rules);
        if (!rules.containsKey(start)) throw new ConstraintException("grammar: no rule named " + start, null);
        for (String name : rules.keySet()) l.id(name);
        for (var e : rules.entrySet()) {
            int id = l.ids.get(e.getKey());
            Expr body = e.getValue();
            List<Expr> options = body instanceof Alt a ? a.options() : List.of(body);
            for (Expr o : options) l.alts.get(id).add(l.sequence(o, e.getKey()));
        }
        Grammar g = l.build(l.ids.get(start));
        g.checkLeftRecursion();
        return g;
    }

    private static final class Lowering {
        final Map<String, Expr> source;
        final Map<String, Integer> ids = new HashMap<>();
        final List<String> names = new ArrayList<>();
        final List<List<int[]>> alts = new ArrayList<>();
        final Map<String, Integer> classes = new HashMap<>();
        long size;

        Lowering(Map<String, Expr> source) { this.source = source; }

        int id(String name) {
            return ids.computeIfAbsent(name, n -> newRule(n));
        }

        int newRule(String name) {
            names.add(name);
            alts.add(new ArrayList<>());
            return names.size() - 1;
        }

        int[] sequence(Expr e, String owner) throws ConstraintException {
            IntList out = new IntList();
            append(e, owner, out);
            size += out.size + 1;
            if (size > MAX_SYMBOLS) throw new ConstraintException("grammar too large after expanding repetitions (rule " + owner + ")", null);
            return out.toArray();
        }

        void append(Expr e, String owner, IntList out) throws ConstraintException {
            switch (e) {
                case Lit lit -> {
                    for (int cp : lit.codePoints()) {
                        byte[] b = new String(Character.toChars(cp)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                        for (byte x : b) out.add((x & 0xFF) | (x & 0xFF) << 8);
                    }
                }
                case Cls c -> {
                    List<int[]> seqs = Utf8Ranges.of(c.ranges());
                    if (seqs.isEmpty()) throw new ConstraintException("grammar: empty character class in rule " + owner, null);
                    if (seqs.size() == 1 && seqs.get(0).length == 1) {
                        out.add(seqs.get(0)[0]);
                        return;
                    }
                    String key = Arrays.deepToString(c.ranges());
                    Integer r = classes.get(key);
                    if (r == null) {
                        r = newRule(owner + "-class");
                        for (int[] s : seqs) alts.get(r).add(s);
                        classes.put(key, r);
                    }
                    out.add(-2 - r);
                }
                case Ref ref -> {
                    Integer r = source.containsKey(ref.name()) ? ids.get(ref.name()) : null;
                    if (r == null) throw new ConstraintException("grammar: undefined rule " + ref.name(), ref.at());
                    out.add(-2 - r);
                }
                case Seq s -> {
                    for (Expr x : s.items()) append(x, owner, out);
                }
                case Alt a -> {
                    int r = newRule(owner + "-alt");
                    for (Expr o : a.options()) {
                        int[] seq = sequence(o, owner);
                        alts.get(r).add(seq);
                    }
                    out.add(-2 - r);
                }
                case Rep rep -> {
                    int x = single(rep.e(), owner);
                    for (int k = 0; k < rep.min(); k++) out.add(x);
                    size += rep.min();
                    if (rep.max() < 0) {
                        int star = newRule(owner + "-star");
                        alts.get(star).add(new int[]{x, -2 - star});
                        alts.get(star).add(new int[0]);
                        out.add(-2 - star);
                    } else if (rep.max() > rep.min()) {
                        int prev = -1;
                        for (int k = 1; k <= rep.max() - rep.min(); k++) {
                            int opt = newRule(owner + "-opt");
                            alts.get(opt).add(prev < 0 ? new int[]{x} : new int[]{x, -2 - prev});
                            alts.get(opt).add(new int[0]);
                            prev = opt;
                            size += 3;
                        }
                        out.add(-2 - prev);
                    }
                    if (size > MAX_SYMBOLS) throw new ConstraintException("grammar too large after expanding repetitions (rule " + owner + ")", null);
                }
            }
        }

        /** One symbol standing for {@code e}: itself when it is one, else a helper rule. */
        int single(Expr e, String owner) throws ConstraintException {
            IntList tmp = new IntList();
            append(e, owner, tmp);
            if (tmp.size == 1) return tmp.get(0);
            int r = newRule(owner + "-group");
            alts.get(r).add(tmp.toArray());
            size += tmp.size + 1;
            return -2 - r;
        }

        Grammar build(int root) {
            IntList sym = new IntList();
            int[][] starts = new int[alts.size()][];
            for (int r = 0; r < alts.size(); r++) {
                starts[r] = new int[alts.get(r).size()];
                for (int a = 0; a < starts[r].length; a++) {
                    starts[r][a] = sym.size;
                    for (int s : alts.get(r).get(a)) sym.add(s);
                    sym.add(END);
                }
            }
            return new Grammar(sym.toArray(), starts, names.toArray(String[]::new), root);
        }
    }

    /** Refuses a rule that can reach itself without consuming a byte: expanding it would never end. */
    private void checkLeftRecursion() throws ConstraintException {
        int n = alts.length;
        boolean[] nullable = new boolean[n];
        for (boolean changed = true; changed; ) {
            changed = false;
            for (int r = 0; r < n; r++) {
                if (nullable[r]) continue;
                for (int a : alts[r]) {
                    boolean all = true;
                    for (int p = a; sym[p] != END && all; p++) all = !isTerminal(sym[p]) && nullable[rule(sym[p])];
                    if (all) { nullable[r] = changed = true; break; }
                }
            }
        }
        List<List<Integer>> first = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            List<Integer> f = new ArrayList<>();
            for (int a : alts[r])
                for (int p = a; sym[p] != END && !isTerminal(sym[p]); p++) {
                    f.add(rule(sym[p]));
                    if (!nullable[rule(sym[p])]) break;
                }
            first.add(f);
        }
        int[] color = new int[n];
        for (int r = 0; r < n; r++) {
            int cyc = cycle(r, first, color);
            if (cyc >= 0)
                throw new ConstraintException("grammar: rule " + names[cyc].replaceAll("-(class|alt|star|opt|group)$", "")
                        + " is left-recursive (it can reach itself without consuming input)", null);
        }
    }

    private static int cycle(int r, List<List<Integer>> first, int[] color) {
        if (color[r] == 2) return -1;
        if (color[r] == 1) return r;
        color[r] = 1;
        for (int s : first.get(r)) {
            int c = cycle(s, first, color);
            if (c >= 0) return c;
        }
        color[r] = 2;
        return -1;
    }

    /** A growable int array. */
    static final class IntList {
        int[] a = new int[8];
        int size;

        void add(int v) {
            if (size == a.length) a = Arrays.copyOf(a, size * 2);
            a[size++] = v;
        }

        int get(int i) { return a[i]; }

        int[] toArray() { return Arrays.copyOf(a, size); }
    }
}
