package dev.bdserve.server;

/**
 * Mistral (v3 tokenizer templates): {@code [TOOL_CALLS]} then a JSON list of {@code {"name": ..., "arguments":
 * {...}}}; text before the marker is content, so is anything after the list or from an element that is not a call
 * on. Ids are 9 letters and digits, as Mistral's templates require of {@code tool_call_id}. The newer
 * {@code [TOOL_CALLS]name[ARGS]{...}} form is not parsed.
 */
final class MistralToolParser extends ToolCallParser {
    static final String MARKER = "[TOOL_CALLS]";

    @Override String name() { return "mistral"; }

    @Override String newId() { return random(9); }

    @Override
    ToolCallScan scan(String text, boolean constrained) {
        ToolCallScan.Builder b = new ToolCallScan.Builder();
        int k, i;
        if (constrained) {
            k = 0;
            i = 0;
        } else {
            k = text.indexOf(MARKER);
            if (k < 0) {
                int h = holdBack(text, 0, MARKER);
                b.text(text.substring(0, h));
                return b.build(h);
            }
            b.text(text.substring(0, k));
            i = k + MARKER.length();
        }
        i = skipSpace(text, i);
        if (i == text.length()) return b.build(k);
        if (text.charAt(i) != '[') {
            b.text(text.substring(k));
            return b.build(text.length());
        }
        int elem = skipSpace(text, i + 1);
        int pending = b.hasCall() ? elem : k;
        while (true) {
            if (elem == text.length()) return b.build(pending);
            char c = text.charAt(elem);
            if (c == ']' && b.hasCall()) {
                b.text(text.substring(elem + 1));
                return b.build(text.length());
            }
            if (c != '{') break;
            int end = jsonEnd(text, elem);
            if (end < 0) return b.build(b.hasCall() ? pending : k);
            ToolCallScan.Call call = call(text.substring(elem, end));
            if (call == null) break;
            b.call(call);
            pending = end;
            int j = skipSpace(text, end);
            if (j == text.length()) return b.build(pending);
            if (text.charAt(j) == ',') elem = skipSpace(text, j + 1);
            else if (text.charAt(j) == ']') elem = j;
            else break;
        }
        // not a call list from here on: the rest is content
        b.text(text.substring(b.hasCall() ? pending : k));
        return b.build(text.length());
    }
}
