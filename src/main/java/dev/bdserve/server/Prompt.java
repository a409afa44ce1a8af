package dev.bdserve.server;

import dev.bdserve.tokenizer.Tokenizer;

/** One prompt of a request: its token ids and, when it came as text, that text (echoed back as written). */
record Prompt(int[] ids, String text) {
    /** The text that echo returns: as written, or decoded from the ids. */
    String echoText(Tokenizer tok) { return text != null ? text : tok.decode(ids); }
}
