package dev.bdserve.tokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A llama2.c-format tokenizer for synthetic models: ids 0/1/2 are &lt;unk&gt;/&lt;s&gt;/&lt;/s&gt;, then byte-fallback tokens
 * &lt;0x00&gt;.. (as many as the vocabulary holds), then filler tokens "⟨id⟩" that text never merges into. So text
 * encodes byte by byte, and any id decodes to something printable.
 */
public final class SynthTokenizer {
    private SynthTokenizer() {}

    /** Writes {@code tokenizer.bin} for a vocabulary of {@code vocab} ids into {@code dir}. */
    public static void write(Path dir, int vocab) {
        if (vocab < 4) throw new IllegalArgumentException("vocabulary too small: " + vocab);
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        int maxLen = 0;
        for (int id = 0; id < vocab; id++) {
            String s = id == 0 ? "<unk>" : id == 1 ? "\n<s>\n" : id == 2 ? "\n</s>\n"
                    : id - 3 < 256 ? String.format("<0x%02X>", id - 3) : "\u27e8" + id + "\u27e9";
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            maxLen = Math.max(maxLen, b.length);
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            e.putFloat(id < 259 ? 0f : -id).putInt(b.length);
            body.writeBytes(e.array());
            body.writeBytes(b);
        }
        ByteBuffer head = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(maxLen);
        try {
            Files.createDirectories(dir);
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            all.writeBytes(head.array());
            body.writeTo(all);
            Files.write(dir.resolve("tokenizer.bin"), all.toByteArray());
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot write tokenizer to " + dir + ": " + ex.getMessage(), ex);
        }
    }
}
