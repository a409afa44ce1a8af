package dev.bdserve.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Incremental UTF-8 assembly shared by the stream decoders: bytes are appended per token, complete
 * characters are returned, and only a trailing proper prefix of a UTF-8 sequence that Java's decoder would
 * treat as one unit (a well-formed prefix per Unicode Table 3-7, plus ED A0..BF) is held back. Anything else (complete or already-invalid bytes) is emitted at once, so concatenating the
 * outputs gives exactly {@code new String(allBytes, UTF_8)}.
 */
final class Utf8Stream {
    private byte[] buf = new byte[16];
    private int len;

    /** Appends bytes (a slice) and returns the newly completed text. */
    String push(byte[] bytes, int off, int n) {
        if (len + n > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
        System.arraycopy(bytes, off, buf, len, n);
        len += n;
        int keep = incompleteTail(buf, len);
        int emit = len - keep;
        if (emit == 0) return "";
        String s = new String(buf, 0, emit, StandardCharsets.UTF_8);
        System.arraycopy(buf, emit, buf, 0, keep);
        len = keep;
        return s;
    }

    /** Returns the held-back bytes (an incomplete sequence becomes U+FFFD) and resets. */
    String flush() {
        String s = len == 0 ? "" : new String(buf, 0, len, StandardCharsets.UTF_8);
        len = 0;
        return s;
    }

    /**
     * Number of trailing bytes of {@code b[0..n)} that form a proper prefix of a well-formed UTF-8 sequence
     * (Unicode Table 3-7), i.e. that the next bytes could still complete; 0 otherwise.
     */
    static int incompleteTail(byte[] b, int n) {
        for (int k = 1; k <= 3 && k <= n; k++) {
            int lead = b[n - k] & 0xFF;
            if (lead < 0x80) return 0;               // ASCII: nothing pending
            if (lead < 0xC0) continue;               // continuation byte: look further back
            int need = lead < 0xC2 ? -1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF5 ? 4 : -1;
            if (need < 0 || k >= need) return 0;    // invalid lead, or the sequence is complete (or broken)
            if (k >= 2) {                            // check the second byte's restricted range
                int c1 = b[n - k + 1] & 0xFF;
                int lo = 0x80, hi = 0xBF;
                if (lead == 0xE0) lo = 0xA0;
                // ED A0..BF (an encoded surrogate) is NOT cut short: Java's decoder replaces the whole 3-byte
                // unit by one U+FFFD, so splitting it would change the text
                else if (lead == 0xF0) lo = 0x90;
                else if (lead == 0xF4) hi = 0x8F;
                if (c1 < lo || c1 > hi) return 0;
            }
            // all later bytes are continuation bytes (checked by the loop reaching here)
            return k;
        }
        return 0;
    }
}
