package dev.bdserve.server;

import java.util.ArrayList;
import java.util.List;

/**
 * The tool calls of one choice as its text grows: each {@link #feed} returns the content and the calls decided
 * since the last one, holding back what may still become a call; {@link #finish} returns the rest. A non-streamed
 * response calls only {@code finish}, so both paths give the same content and calls. Calls past {@code maxCalls}
 * ({@code parallel_tool_calls: false}: one) are dropped.
 */
final class ToolCallStreamer {
    /** What to send: new content (maybe empty) and new calls, numbered from {@code firstIndex}. */
    record Out(String content, List<ToolCall> calls, int firstIndex) {}

    private final ToolCallParser parser;
    private final boolean constrained;
    private final int maxCalls;
    private final List<ToolCall> calls = new ArrayList<>();
    private final StringBuilder content = new StringBuilder();
    private int part, charsInPart;   // the scan part being sent, and how much of it (text) went out

    ToolCallStreamer(ToolCallParser parser, boolean constrained, int maxCalls) {
        this.parser = parser;
        this.constrained = constrained;
        this.maxCalls = maxCalls;
    }

    /** The new content and calls once the choice's text is {@code text} (all of it so far). */
    Out feed(String text) { return send(parser.scan(text, constrained), text, false); }

    /** The rest, once the choice ended with {@code text}: its undecided tail is content. */
    Out finish(String text) { return send(parser.scan(text, constrained), text, true); }

    /** Every call sent so far. */
    List<ToolCall> calls() { return calls; }

    /** Every content character sent so far, or null when that is blank and there are calls (OpenAI's shape). */
    String content() { return content.toString().isBlank() && !calls.isEmpty() ? null : content.toString(); }

    private Out send(ToolCallScan scan, String text, boolean last) {
        StringBuilder out = new StringBuilder();
        int first = calls.size();
        List<ToolCall> fresh = new ArrayList<>();
        List<ToolCallScan.Part> parts = scan.parts();
        for (; part < parts.size(); part++) {
            boolean lastPart = part == parts.size() - 1;
            switch (parts.get(part)) {
                case ToolCallScan.Text t -> {
                    String s = t.text().substring(charsInPart);
                    if (lastPart && !last) {
                        // a text part can still grow; after a call, send it only once it is not blank
                        if (!t.afterCall() || !t.text().isBlank()) { out.append(s); charsInPart = t.text().length(); }
                        return done(out, fresh, first);
                    }
                    if (!t.afterCall() || !t.text().isBlank()) out.append(s);
                    charsInPart = 0;
                }
                case ToolCallScan.Call c -> {
                    if (calls.size() < maxCalls) {
                        ToolCall tc = new ToolCall(parser.newId(), c.name(), c.arguments());
                        calls.add(tc);
                        fresh.add(tc);
                    }
                }
            }
        }
        if (last) out.append(text, scan.tail(), text.length());
        return done(out, fresh, first);
    }

    private Out done(StringBuilder out, List<ToolCall> fresh, int first) {
        content.append(out);
        return new Out(out.toString(), fresh, first);
    }
}
