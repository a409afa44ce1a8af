package dev.bdserve.lora;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tokens of one step grouped by adapter (SGMV-style segments). Tokens without an adapter are in
 * no segment and skip the LoRA path.
 *
 * @param segments one per distinct adapter in the step, in first-appearance order
 */
public record LoraBatch(List<Segment> segments) {

    /**
     * The tokens of one adapter.
     *
     * @param adapter its prepared factors
     * @param tokens  indices into the step's tokens, ascending
     */
    public record Segment(PreparedAdapter adapter, int[] tokens) {
        /** Whether the segment is the step's first tokens in order (0, 1, .., n−1): its inputs are already contiguous. */
        public boolean leading() {
            for (int i = 0; i < tokens.length; i++) if (tokens[i] != i) return false;
            return true;
        }
    }

    public static final LoraBatch EMPTY = new LoraBatch(List.of());

    /** Groups the step's tokens by their (prepared) adapter; null entries mean "no adapter". */
    public static LoraBatch of(PreparedAdapter[] perToken) {
        if (perToken == null) return EMPTY;
        Map<PreparedAdapter, List<Integer>> groups = new IdentityHashMap<>();
        List<PreparedAdapter> order = new ArrayList<>();
        for (int t = 0; t < perToken.length; t++) {
            PreparedAdapter a = perToken[t];
            if (a == null) continue;
            groups.computeIfAbsent(a, k -> { order.add(k); return new ArrayList<>(); }).add(t);
        }
        List<Segment> segs = new ArrayList<>(order.size());
        for (PreparedAdapter a : order)
            segs.add(new Segment(a, groups.get(a).stream().mapToInt(Integer::intValue).toArray()));
        return new LoraBatch(List.copyOf(segs));
    }

    public boolean isEmpty() { return segments.isEmpty(); }

    /** Largest number of tokens in one segment. */
    public int maxSegmentTokens() {
        int m = 0;
        for (Segment s : segments) m = Math.max(m, s.tokens().length);
        return m;
    }
}
