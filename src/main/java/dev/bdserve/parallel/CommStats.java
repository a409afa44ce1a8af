package dev.bdserve.parallel;

import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** Calls, bytes and seconds of collectives, per {@link Collective}. Thread-confined to its rank. */
public final class CommStats {
    private final long[] calls = new long[Collective.values().length];
    private final long[] bytes = new long[Collective.values().length];
    private final long[] nanos = new long[Collective.values().length];
    /** Fastest single call per kind since the counters began (not windowed by {@link #minus}): the latency floor. */
    private final long[] minNanos = new long[Collective.values().length];

    public CommStats() { java.util.Arrays.fill(minNanos, Long.MAX_VALUE); }

    /** Records one collective. */
    public void record(Collective what, long byteCount, long elapsedNanos) {
        calls[what.ordinal()]++;
        bytes[what.ordinal()] += byteCount;
        nanos[what.ordinal()] += elapsedNanos;
        if (elapsedNanos < minNanos[what.ordinal()]) minNanos[what.ordinal()] = elapsedNanos;
    }

    /** The fastest call of this kind since the counters began, in seconds (NaN before the first call). */
    public double minSeconds(Collective c) { return minNanos[c.ordinal()] == Long.MAX_VALUE ? Double.NaN : minNanos[c.ordinal()] / 1e9; }

    public long calls(Collective c) { return calls[c.ordinal()]; }
    public long bytes(Collective c) { return bytes[c.ordinal()]; }
    public double seconds(Collective c) { return nanos[c.ordinal()] / 1e9; }

    /** Calls of every kind except rank 0's control broadcasts. */
    public long modelCalls() {
        long n = 0;
        for (Collective c : Collective.values()) if (c != Collective.CONTROL) n += calls[c.ordinal()];
        return n;
    }

    public double totalSeconds() {
        long n = 0;
        for (long x : nanos) n += x;
        return n / 1e9;
    }

    /** A copy of the counters. */
    public CommStats snapshot() {
        CommStats s = new CommStats();
        System.arraycopy(calls, 0, s.calls, 0, calls.length);
        System.arraycopy(bytes, 0, s.bytes, 0, bytes.length);
        System.arraycopy(nanos, 0, s.nanos, 0, nanos.length);
        System.arraycopy(minNanos, 0, s.minNanos, 0, minNanos.length);
        return s;
    }

    /** this − earlier, per kind (the minima are this one's, since the counters began). */
    public CommStats minus(CommStats earlier) {
        CommStats s = new CommStats();
        for (int i = 0; i < calls.length; i++) {
            s.calls[i] = calls[i] - earlier.calls[i];
            s.bytes[i] = bytes[i] - earlier.bytes[i];
            s.nanos[i] = nanos[i] - earlier.nanos[i];
            s.minNanos[i] = minNanos[i];
        }
        return s;
    }

    /** this + other, per kind (the minima: the smaller of the two). */
    public CommStats plus(CommStats other) {
        CommStats s = new CommStats();
        for (int i = 0; i < calls.length; i++) {
            s.calls[i] = calls[i] + other.calls[i];
            s.bytes[i] = bytes[i] + other.bytes[i];
            s.nanos[i] = nanos[i] + other.nanos[i];
            s.minNanos[i] = Math.min(minNanos[i], other.minNanos[i]);
        }
        return s;
    }

    /** {kind: {calls, bytes, seconds}} for JSON output, kinds with no calls left out. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (Collective c : Collective.values()) {
            if (calls[c.ordinal()] == 0) continue;
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("calls", calls[c.ordinal()]);
            e.put("bytes", bytes[c.ordinal()]);
            e.put("seconds", nanos[c.ordinal()] / 1e9);
            m.put(c.name().toLowerCase(java.util.Locale.ROOT), e);
        }
        return m;
    }

    /** Calls per kind. */
    public Map<Collective, Long> callCounts() {
        Map<Collective, Long> m = new EnumMap<>(Collective.class);
        for (Collective c : Collective.values()) if (calls[c.ordinal()] > 0) m.put(c, calls[c.ordinal()]);
        return m;
    }
}
