package dev.bdserve.server;

/**
 * Hermes / Qwen2.5 / Qwen3: each call is {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>}, any
 * number of them, text around them is content. A block whose body is not such an object stays content.
 */
final class HermesToolParser extends ToolCallParser {
    static final String OPEN = "<tool_call>", CLOSE = "</tool_call>";

    @Override String name() { return "hermes"; }

    @Override
    ToolCallScan scan(String text, boolean constrained) {
        ToolCallScan.Builder b = new ToolCallScan.Builder();
        int pos = 0;
        while (true) {
            int k = text.indexOf(OPEN, pos);
            if (k < 0) {
                int h = holdBack(text, pos, OPEN);
                b.text(text.substring(pos, h));
                return b.build(h);
            }
            b.text(text.substring(pos, k));
            int e = text.indexOf(CLOSE, k + OPEN.length());
            if (e < 0) return b.build(k);
            ToolCallScan.Call c = call(text.substring(k + OPEN.length(), e).strip());
            if (c == null) b.text(text.substring(k, e + CLOSE.length()));
            else b.call(c);
            pos = e + CLOSE.length();
        }
    }
}
