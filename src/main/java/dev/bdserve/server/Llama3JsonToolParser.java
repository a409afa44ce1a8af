package dev.bdserve.server;

/**
 * Llama 3.1 / 3.2 JSON tool calling: the output is {@code {"name": ..., "parameters": {...}}} (or
 * {@code "arguments"}), optionally after {@code <|python_tag|>}, several separated by {@code ;}. Only an output
 * that starts (after whitespace) with the tag or an object is a call; if its first object is not a call the
 * whole output is content, and after the last call anything that does not continue the list is content.
 */
final class Llama3JsonToolParser extends ToolCallParser {
    static final String TAG = "<|python_tag|>";

    @Override String name() { return "llama3_json"; }

    @Override
    ToolCallScan scan(String text, boolean constrained) {
        ToolCallScan.Builder b = new ToolCallScan.Builder();
        int i = skipSpace(text, 0);
        if (text.startsWith(TAG, i)) i = skipSpace(text, i + TAG.length());
        else if (TAG.startsWith(text.substring(i))) return b.build(0);        // empty, blank, or a tag's start
        if (i == text.length()) return b.build(0);
        int pending = 0;
        while (true) {
            if (text.charAt(i) != '{') break;
            int end = jsonEnd(text, i);
            if (end < 0) return b.build(pending);
            ToolCallScan.Call c = call(text.substring(i, end));
            if (c == null) break;
            b.call(c);
            pending = end;
            int j = skipSpace(text, end);
            if (j == text.length()) return b.build(pending);
            if (text.charAt(j) != ';') break;
            i = skipSpace(text, j + 1);
            if (i == text.length()) return b.build(pending);
        }
        b.text(text.substring(pending));
        return b.build(text.length());
    }
}
