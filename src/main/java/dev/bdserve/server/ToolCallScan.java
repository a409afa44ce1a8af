package dev.bdserve.server;

import java.util.ArrayList;
import java.util.List;

/**
 * What a tool-call parser made of a (possibly unfinished) output: text and calls in output order, covering the
 * output up to {@code tail}; the rest is undecided (the start of a call marker, or a call not yet closed). Scans
 * are monotone: a scan of a longer output keeps every part of a shorter one's, except that its last text part
 * may grow. That lets a stream send parts as they are decided and end with what the whole output parses to.
 */
record ToolCallScan(List<Part> parts, int tail) {
    sealed interface Part permits Text, Call {}
    /** Text outside calls. {@code afterCall}: it follows a call (blank text there is dropped). */
    record Text(String text, boolean afterCall) implements Part {}
    /** A call: the function's name and its arguments as compact JSON text. */
    record Call(String name, String arguments) implements Part {}

    /** Builds a scan, merging adjacent text. */
    static final class Builder {
        final List<Part> parts = new ArrayList<>();

        void text(String s) {
            if (s.isEmpty()) return;
            if (!parts.isEmpty() && parts.getLast() instanceof Text t) parts.set(parts.size() - 1, new Text(t.text() + s, t.afterCall()));
            else parts.add(new Text(s, !parts.isEmpty()));
        }

        void call(Call c) { parts.add(c); }

        boolean hasCall() { return parts.stream().anyMatch(p -> p instanceof Call); }

        ToolCallScan build(int tail) { return new ToolCallScan(List.copyOf(parts), tail); }
    }
}
