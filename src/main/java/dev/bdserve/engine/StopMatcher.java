package dev.bdserve.engine;

import java.util.List;

/**
 * Finds a request's stop strings in its growing text, looking each time only at the part that can hold a new
 * match (the new text and the longest stop string's length − 1 before it), not at the whole text again.
 */
final class StopMatcher {
    private final List<String> stops;
    private final int longest;

    StopMatcher(List<String> stops) {
        this.stops = List.copyOf(stops);
        int m = 0;
        for (String s : stops) m = Math.max(m, s.length());
        this.longest = m;
    }

    /** Characters at the end of the text that could still become the start of a stop string: held back from the client. */
    int holdBack() { return Math.max(0, longest - 1); }

    /**
     * Where the earliest stop string starts in {@code text}, given that none occurred in its first {@code before}
     * characters; −1 if none does.
     */
    int find(CharSequence text, int before) {
        if (stops.isEmpty()) return -1;
        int base = Math.max(0, before - longest + 1), best = -1;
        String window = text.subSequence(base, text.length()).toString();
        for (String stop : stops) {
            int i = window.indexOf(stop);
            if (i >= 0 && (best < 0 || base + i < best)) best = base + i;
        }
        return best;
    }
}
