package dev.bdserve.structured;

import java.util.BitSet;

/**
 * One request's progress through a {@link Constraint}: which tokens may come next, and the state after each
 * sampled token. Not thread-safe (one per sequence); cheap to create.
 *
 * <p>Per decode step: {@link #fillAllowed} (or {@link #allowedTokens}) before sampling, then {@link #advance} with the
 * sampled id. A sampled EOS is allowed only where {@link #isAccepting}. When no token is allowed ({@link #isDead}),
 * the constraint can no longer be satisfied by this vocabulary and the request must end with an error.
 */
public final class TokenMatcher {
    private final Constraint constraint;
    private final TokenVocabulary vocab;
    private StateSpace.State state;
    private boolean finished;
    private long maskNanos, lastMaskNanos;
    private int masks;

    TokenMatcher(Constraint constraint, TokenVocabulary vocab, StateSpace.State start) {
        this.constraint = constraint;
        this.vocab = vocab;
        this.state = start;
    }

    public Constraint constraint() { return constraint; }

    public TokenVocabulary vocabulary() { return vocab; }

    /**
     * Clears {@code out} and sets the ids allowed next: tokens whose bytes continue the constraint, and the EOS ids
     * when the output may end here. After EOS was accepted, nothing is allowed. Masks are cached per state.
     */
    public void fillAllowed(BitSet out) {
        long t0 = System.nanoTime();
        out.clear();
        if (!finished) out.or(mask());
        lastMaskNanos = System.nanoTime() - t0;
        maskNanos += lastMaskNanos;
        masks++;
    }

    /** The ids allowed next, as a new BitSet (see {@link #fillAllowed}). */
    public BitSet allowedTokens() {
        BitSet b = new BitSet(vocab.size());
        fillAllowed(b);
        return b;
    }

    private BitSet mask() {
        rehome();
        BitSet m = state.cachedMask(vocab);
        if (m == null) {
            m = new BitSet(vocab.size());
            vocab.fill(state, m);
            state.cacheMask(vocab, m);
        }
        return m;
    }

    /**
     * Takes token {@code id}: true if it was allowed (the state moves on; an EOS finishes the match), false if not
     * (the state is unchanged).
     */
    public boolean advance(int id) {
        if (finished || id < 0 || id >= vocab.size()) return false;
        if (vocab.isEos(id)) {
            if (!state.accepting) return false;
            finished = true;
            return true;
        }
        byte[] b = vocab.bytes(id);
        if (b == null || b.length == 0) return false;
        return advanceBytes(b);
    }

    /** Takes raw output bytes (for forced text or tests): true if the constraint admits them, else the state is unchanged. */
    public boolean advanceBytes(byte[] bytes) {
        if (finished) return false;
        rehome();
        StateSpace.State s = state;
        for (byte b : bytes) {
            s = s.step(b & 0xFF);
            if (s.isDead()) return false;
        }
        state = s;
        return true;
    }

    /** Whether the output may end here (EOS allowed). */
    public boolean isAccepting() { return !finished && state.accepting; }

    /** Whether the match ended with an accepted EOS. */
    public boolean isFinished() { return finished; }

    /** Whether no token at all is allowed next: the constraint cannot be completed with this vocabulary. */
    public boolean isDead() { return !finished && mask().isEmpty(); }

    /** Nanoseconds spent in {@link #fillAllowed} so far, over {@link #maskCount} calls. */
    public long maskNanos() { return maskNanos; }

    public long lastMaskNanos() { return lastMaskNanos; }

    public int maskCount() { return masks; }

    /** The slow twin of {@link #fillAllowed}: every token checked on its own by a plain recognizer. For tests. */
    BitSet allowedTokensSlow() {
        if (finished) return new BitSet();
        SlowRecognizer slow = new SlowRecognizer(constraint.grammar());
        return slow.mask(SlowRecognizer.of(StateSpace.stacks(state)), vocab);
    }

    StateSpace.State state() { return state; }

    /** Moves to the constraint's current state space once the one this matcher started in is full. */
    private void rehome() {
        if (state.space.full()) state = constraint.space().copy(state);
    }
}
