package dev.bdserve.tokenizer;

import dev.bdserve.model.gguf.GgufTestFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link Tokenizer#outputBytes} agrees with each tokenizer's own decoding, token by token over the whole vocabulary:
 * after a plain "x", every token decodes to "x" followed by its bytes. A token whose bytes are not whole UTF-8 (a byte
 * fallback token, a byte-level piece splitting a character) is completed into whole characters with single-byte tokens
 * before and after it. Special, control and unused tokens have no bytes and decode to nothing.
 */
class OutputBytesTest {
    @TempDir Path dir;

    @ParameterizedTest(name = "{0}")
    @CsvSource({"qwen3, llama-bpe", "llama3, llama-bpe", "llama2, llama-spm", "gemma3, llama-spm"})
    void realVocabulariesAndTheirGgufMatchDecode(String name, String llamaCppVocab) throws Exception {
        try (HfTokenizer hf = HfTokenizer.load(GgufTestFiles.realTokenizer(name))) {
            check(hf);
            Path written = dir.resolve(name + ".gguf");
            LlamaCppVocab.withTokenizer(GgufTestFiles.vocab(llamaCppVocab), written, w -> GgufTokenizers.writeMetadata(hf, w, hf.vocabSize()));
            check(Tokenizers.load(written));
        }
    }

    @Test
    void llama2cAndSyntheticVocabulariesMatchDecode() throws Exception {
        check(Llama2cTokenizer.load(TestModels.tok512()));
        SynthTokenizer.write(dir.resolve("synth"), 600);
        check(Tokenizers.load(dir.resolve("synth")));
    }

    /** Every id of {@code t}: its bytes (completed to whole characters) decode after "x" as "x" and those bytes. */
    static void check(Tokenizer t) {
        int[] x = t.encode("x", false);
        String xs = t.decode(x);
        int[] single = new int[256];
        java.util.Arrays.fill(single, -1);
        for (int id = 0; id < t.vocabSize(); id++) {
            byte[] b = t.outputBytes(id);
            if (b != null && b.length == 1 && single[b[0] & 0xFF] < 0) single[b[0] & 0xFF] = id;
        }
        List<String> failures = new ArrayList<>();
        int special = 0, completed = 0, skipped = 0;
        for (int id = 0; id < t.vocabSize(); id++) {
            byte[] b = t.outputBytes(id);
            if (b == null) {
                special++;
                String d = t.decode(concat(x, new int[]{id}));
                if (!d.equals(xs)) failures.add("special " + id + " decodes to '" + d + "'");
                continue;
            }
            byte[] pre = leadFor(b), post = tailFor(b);
            int[] ids = new int[x.length + pre.length + 1 + post.length];
            System.arraycopy(x, 0, ids, 0, x.length);
            boolean ok = true;
            for (int i = 0; i < pre.length; i++) ok &= (ids[x.length + i] = single[pre[i] & 0xFF]) >= 0;
            ids[x.length + pre.length] = id;
            for (int i = 0; i < post.length; i++) ok &= (ids[x.length + pre.length + 1 + i] = single[post[i] & 0xFF]) >= 0;
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            all.writeBytes(pre);
            all.writeBytes(b);
            all.writeBytes(post);
            String want = strict(all.toByteArray());
            if (!ok || want == null) {
                skipped++;
                continue;
            }
            if (pre.length + post.length > 0) completed++;
            String got = t.decode(ids);
            if (!got.equals(xs + want) && failures.size() < 20) failures.add("token " + id + ": decode '" + got + "', bytes '" + xs + want + "'");
        }
        assertEquals(List.of(), failures, t.toString());
        assertTrue(special >= 1, t + ": no special tokens");
        // the 13 bytes that never occur in UTF-8 (C0, C1, F5..FF) cannot be completed
        assertTrue(skipped <= 13 + t.vocabSize() / 100, t + ": " + skipped + " tokens could not be completed to whole characters");
        if (t.vocabSize() > 10_000) assertTrue(completed > 0, t + ": no partial-character tokens checked");
    }

    /** Lead and continuation bytes that make {@code b}'s leading continuation bytes a whole character. */
    private static byte[] leadFor(byte[] b) {
        int c = 0;
        while (c < b.length && c < 3 && (b[c] & 0xC0) == 0x80) c++;
        if (c == 0) return new byte[0];
        byte[] p = new byte[4 - c];
        p[0] = (byte) (c == 3 && (b[0] & 0xFF) < 0x90 ? 0xF1 : 0xF0);
        for (int i = 1; i < p.length; i++) p[i] = (byte) (i == 1 ? 0x90 : 0x80);
        return p;
    }

    /** Continuation bytes that complete a character {@code b} ends inside of. */
    private static byte[] tailFor(byte[] b) {
        for (int back = 1; back <= Math.min(3, b.length); back++) {
            int v = b[b.length - back] & 0xFF;
            if ((v & 0xC0) == 0x80) continue;
            int need = v >= 0xF0 ? 4 : v >= 0xE0 ? 3 : v >= 0xC0 ? 2 : 1;
            if (need <= back) return new byte[0];
            byte[] s = new byte[need - back];
            for (int i = 0; i < s.length; i++) s[i] = (byte) (i == 0 && back == 1 && (v == 0xE0 || v == 0xF0) ? 0xA0 : 0x80);
            return s;
        }
        return new byte[0];
    }

    private static String strict(byte[] b) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
