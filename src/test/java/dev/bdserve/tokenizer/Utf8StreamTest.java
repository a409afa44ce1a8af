package dev.bdserve.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

class Utf8StreamTest {
    static final int[] INTERESTING = {0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE4, 0xED, 0xEF, 0xF0, 0xF3, 0xF4, 0xF5, 0xFF};

    /** Every sequence of up to 4 interesting bytes, pushed byte by byte, gives exactly the whole-array decode. */
    @Test
    void byteByByteEqualsWholeDecodeForAllShortSequences() {
        int n = INTERESTING.length;
        byte[] buf = new byte[4];
        for (int len = 1; len <= 4; len++) {
            int total = (int) Math.pow(n, len);
            for (int code = 0; code < total; code++) {
                int c = code;
                for (int i = 0; i < len; i++) {
                    buf[i] = (byte) INTERESTING[c % n];
                    c /= n;
                }
                var u = new Utf8Stream();
                var sb = new StringBuilder();
                for (int i = 0; i < len; i++) sb.append(u.push(buf, i, 1));
                sb.append(u.flush());
                String whole = new String(buf, 0, len, StandardCharsets.UTF_8);
                if (!whole.equals(sb.toString()))
                    assertEquals(whole, sb.toString(), "bytes " + java.util.HexFormat.ofDelimiter(" ").formatHex(buf, 0, len));
            }
        }
    }

    @Test
    void encodedSurrogateIsOneReplacement() {
        // regression (found by jqwik): ED A0 80 decodes to a single U+FFFD in Java
        int[] ids = {0xED + 3, 0xA0 + 3, 0x80 + 3};
        assertEquals(Llama2cTokenizerTest.LLAMA2.decode(ids), Llama2cTokenizerTest.streamDecode(Llama2cTokenizerTest.LLAMA2, ids));
    }
}
