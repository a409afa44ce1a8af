package dev.bdserve.structured;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The recognizer of a {@link Grammar}, as llama.cpp runs GBNF: a state is the set of parse stacks that the input so
 * far leaves possible, each stack expanded until a byte range is on top; a byte keeps the stacks whose top admits it,
 * advanced and expanded again. A state with no stacks is dead; a state holding the empty stack accepts.
 *
 * <p>Stacks are interned linked lists ({@link Node}: position in the grammar, then the continuation), states interned
 * sets of them, so equal states are one object and memoize their byte transitions and token masks: the automaton is
 * a DFA built lazily, as far as the inputs seen go. A state's transitions are computed together, once per interval
 * of bytes its stacks cannot tell apart ({@link #transitions}); {@link #advance} computes one byte's. Instances are thread-safe: interning goes through concurrent maps,
 * and a lost race on a transition table or mask slot only recomputes an equal value. A space grows with what it has seen;
 * {@link #full} tells the owner to start a fresh one.
 */
final class StateSpace {
    /** States per space before the owner should start a new one (each memoizes up to 256 transitions). */
    static final int MAX_STATES = 20_000;

    /** A stack: match at {@code pos}, then go on with {@code next} (null: the input may end). */
    static final class Node {
        final int id, pos;
        final Node next;

        Node(int id, int pos, Node next) {
            this.id = id;
            this.pos = pos;
            this.next = next;
        }
    }

    /** A set of stacks: the recognizer's state. */
    static final class State {
        final StateSpace space;
        final Node[] stacks;
        final boolean accepting;
        private volatile State[] next;
        private volatile Object[] mask; // {TokenVocabulary, BitSet}

        State(StateSpace space, Node[] stacks) {
            this.space = space;
            this.stacks = stacks;
            boolean acc = false;
            for (Node n : stacks) acc |= n == space.accept;
            this.accepting = acc;
        }

        boolean isDead() { return stacks.length == 0; }

        /** The state after byte {@code b} (0..255); the first call computes all 256 (see {@link #transitions}). */
        State step(int b) {
            State[] t = next;
            if (t == null) next = t = space.transitions(this);
            return t[b];
        }

        BitSet cachedMask(TokenVocabulary v) {
            Object[] m = mask;
            return m != null && m[0] == v ? (BitSet) m[1] : null;
        }

        void cacheMask(TokenVocabulary v, BitSet bits) { mask = new Object[]{v, bits}; }
    }

    final Grammar g;
    /** The empty stack: the input may end here. */
    final Node accept;
    final State dead;
    private final AtomicInteger ids = new AtomicInteger(1);
    private final ConcurrentHashMap<Long, Node> nodes = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Key, State> states = new ConcurrentHashMap<>();

    private final int maxStates;

    StateSpace(Grammar g) { this(g, MAX_STATES); }

    /** A space that reports itself {@link #full} beyond {@code maxStates} states. */
    StateSpace(Grammar g, int maxStates) {
        this.g = g;
        this.maxStates = maxStates;
        this.accept = new Node(0, -1, null);
        this.dead = intern(new HashSet<>());
    }

    boolean full() { return states.size() > maxStates; }

    int size() { return states.size(); }

    /** The state before any input. */
    State start() {
        Set<Node> out = new HashSet<>();
        for (int a : g.alts[g.root]) expand(a, null, out);
        return intern(out);
    }

    /**
     * All 256 successors of {@code s}, computed once per class of bytes that the stacks' byte ranges do not tell
     * apart (the ranges' bounds cut 0..255 into a few intervals), not once per byte.
     */
    State[] transitions(State s) {
        boolean[] cut = new boolean[257];
        cut[0] = cut[256] = true;
        for (Node n : s.stacks) {
            if (n == accept) continue;
            int x = g.sym[n.pos];
            cut[Grammar.lo(x)] = cut[Grammar.hi(x) + 1] = true;
        }
        State[] t = new State[256];
        for (int from = 0, b = 1; b <= 256; b++) {
            if (!cut[b]) continue;
            java.util.Arrays.fill(t, from, b, advance(s, from));
            from = b;
        }
        return t;
    }

    /** The state after byte {@code b}. */
    State advance(State s, int b) {
        Set<Node> out = new HashSet<>();
        for (Node n : s.stacks) {
            if (n == accept) continue;
            int x = g.sym[n.pos];
            if (b >= Grammar.lo(x) && b <= Grammar.hi(x)) expand(n.pos + 1, n.next, out);
        }
        return intern(out);
    }

    /** Adds the stacks that continue at {@code pos} then {@code cont}, expanded until a byte range is on top. */
    private void expand(int pos, Node cont, Set<Node> out) {
        int x = g.sym[pos];
        if (x == Grammar.END) {
            if (cont == null) out.add(accept);
            else expand(cont.pos, cont.next, out);
        } else if (Grammar.isTerminal(x)) {
            out.add(node(pos, cont));
        } else {
            Node ret = g.sym[pos + 1] == Grammar.END ? cont : node(pos + 1, cont);
            for (int a : g.alts[Grammar.rule(x)]) expand(a, ret, out);
        }
    }

    private Node node(int pos, Node next) {
        long key = ((long) pos << 32) | ((next == null ? -1 : next.id) & 0xFFFFFFFFL);
        Node n = nodes.get(key);
        if (n != null) return n;
        return nodes.computeIfAbsent(key, k -> new Node(ids.getAndIncrement(), pos, next));
    }

    private State intern(Set<Node> set) {
        Node[] stacks = set.toArray(Node[]::new);
        Arrays.sort(stacks, (a, b) -> Integer.compare(a.id, b.id));
        int[] key = new int[stacks.length];
        for (int i = 0; i < key.length; i++) key[i] = stacks[i].id;
        Key k = new Key(key);
        State s = states.get(k);
        if (s != null) return s;
        return states.computeIfAbsent(k, x -> new State(this, stacks));
    }

    /** The state of another space (an earlier one of the same grammar) rebuilt in this one. */
    State copy(State s) {
        if (s.space == this) return s;
        Set<Node> out = new HashSet<>();
        for (Node n : s.stacks) out.add(copy(n, s.space.accept));
        return intern(out);
    }

    private Node copy(Node n, Node otherAccept) {
        if (n == null) return null;
        if (n == otherAccept) return accept;
        return node(n.pos, copy(n.next, otherAccept));
    }

    /** The stacks of a state as position lists, top first (for the slow twin); the empty list is the empty stack. */
    static List<int[]> stacks(State s) {
        List<int[]> out = new ArrayList<>();
        for (Node n : s.stacks) {
            if (n == s.space.accept) { out.add(new int[0]); continue; }
            Grammar.IntList l = new Grammar.IntList();
            for (Node x = n; x != null; x = x.next) l.add(x.pos);
            out.add(l.toArray());
        }
        return out;
    }

    private record Key(int[] ids) {
        @Override public boolean equals(Object o) { return o instanceof Key k && Arrays.equals(ids, k.ids); }
        @Override public int hashCode() { return Arrays.hashCode(ids); }
    }
}
