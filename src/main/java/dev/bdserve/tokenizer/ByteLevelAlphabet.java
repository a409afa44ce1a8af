package dev.bdserve.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * GPT-2's byte-to-unicode alphabet ({@code bytes_to_unicode}), in which byte-level BPE vocabularies (GPT-2, Llama 3,
 * Qwen2) spell every byte by one printable character, e.g. {@code Ġ} for space: the table both ways, and a piece's
 * bytes read back through it.
 */
final class ByteLevelAlphabet {
    private ByteLevelAlphabet() {}

    /** GPT-2's bytes_to_unicode, inverted: char → byte (or -1). */
    static int[] decoder() {
        int[] dec = new int[512];
        Arrays.fill(dec, -1);
        char[] enc = encoder();
        for (int b = 0; b < 256; b++) dec[enc[b]] = b;
        return dec;
    }

    /** GPT-2's bytes_to_unicode: byte → char. */
    static char[] encoder() {
        char[] enc = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            enc[b] = printable ? (char) b : (char) (256 + n++);
        }
        return enc;
    }

    /** The bytes a piece spells through {@code dec} ({@link #decoder()}); a character outside the alphabet as its UTF-8. */
    static byte[] bytes(String piece, int[] dec) {
        var out = new ByteArrayOutputStream(piece.length());
        for (int i = 0; i < piece.length(); ) {
            int cp = piece.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < dec.length && dec[cp] >= 0) out.write(dec[cp]);
            else out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
        }
        return out.toByteArray();
    }
}
