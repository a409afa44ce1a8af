package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cTokenizerTest {
    static final Llama2cTokenizer TOK512 = Llama2cTokenizer.load(TestModels.tok512());
    static final Llama2cTokenizer LLAMA2 = Llama2cTokenizer.load(TestModels.llama2());

    static final int[] STORIES_GREEDY = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298};

    @Test
    void loadsBothFiles() {
        assertEquals(512, TOK512.vocabSize());
        assertEquals(32000, LLAMA2.vocabSize());
        assertEquals(1, TOK512.bosId());
        assertArrayEquals(new int[]{2}, LLAMA2.eosIds());
        for (int b = 0; b < 256; b++) {
            assertTrue(TOK512.isByteToken(b + 3));
            assertTrue(LLAMA2.isByteToken(b + 3));
        }
        assertEquals("<0x0A>", LLAMA2.tokenString(13));
    }

    @Test
    void storiesGreedyTokensDecode() {
        String text = TOK512.decode(STORIES_GREEDY);
        // the 10th token is " g" (the start of " girl")
        assertEquals(" Once upon a time, there was a little g", text);
        assertEquals(" g", TOK512.tokenString(298));
        // after BOS the dummy-prefix space is dropped, as llama2.c prints it
        int[] withBos = new int[STORIES_GREEDY.length + 1];
        withBos[0] = 1;
        System.arraycopy(STORIES_GREEDY, 0, withBos, 1, STORIES_GREEDY.length);
        assertEquals("Once upon a time, there was a little g", TOK512.decode(withBos));
        // round trip: the dummy prefix reproduces the leading space
        assertArrayEquals(STORIES_GREEDY, TOK512.encode("Once upon a time, there was a little g", false));
        assertArrayEquals(withBos, TOK512.encode("Once upon a time, there was a little g", true));
        // streaming the generated tokens prints the same text
        var sd = TOK512.newStreamDecoder();
        var sb = new StringBuilder();
        for (int id : STORIES_GREEDY) sb.append(sd.push(id));
        sb.append(sd.flush());
        assertEquals(" Once upon a time, there was a little g", sb.toString());
    }

    @Test
    void llama2KnownEncodings() {
        assertArrayEquals(new int[]{1, 15043, 3186}, LLAMA2.encode("Hello world", true));
        assertArrayEquals(new int[]{1, 15043, 29892, 3186, 29991}, LLAMA2.encode("Hello, world!", true));
        assertArrayEquals(new int[]{1, 306, 4658, 278, 6593, 310, 2834, 338},
                LLAMA2.encode("I believe the meaning of life is", true));
        assertArrayEquals(new int[]{15043, 3186}, LLAMA2.encode("Hello world", false));
        assertArrayEquals(new int[0], LLAMA2.encode("", false));
        assertArrayEquals(new int[]{1}, LLAMA2.encode("", true));
        assertEquals("Hello world", LLAMA2.decode(new int[]{1, 15043, 3186, 2}));
    }

    @Test
    void byteFallbackRoundTrip() {
        String s = "Hi 😀 there\n中文字符 and ünïcödé\ttabs 𝔘𝔫𝔦 — ok";
        for (Llama2cTokenizer t : new Llama2cTokenizer[]{LLAMA2, TOK512}) {
            int[] ids = t.encode(s, true);
            assertEquals(s, t.decode(ids), t.toString());
            assertTrue(Arrays.stream(ids).anyMatch(t::isByteToken), "expected byte-fallback tokens");
            assertEquals(s, streamDecode(t, ids));
        }
        // the emoji is not in the Llama-2 vocab: 4 byte tokens F0 9F 98 80
        int[] emoji = LLAMA2.encode("😀", false);
        assertArrayEquals(new int[]{29871, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}, emoji);
        assertArrayEquals(new int[]{29871, 13}, LLAMA2.encode("\n", false)); // "▁" then <0x0A>
    }

    @Test
    void streamDecoderHoldsBackSplitCharacters() {
        var sd = LLAMA2.newStreamDecoder();
        assertEquals("", sd.push(0xF0 + 3));
        assertEquals("", sd.push(0x9F + 3));
        assertEquals("", sd.push(0x98 + 3));
        assertEquals("😀", sd.push(0x80 + 3));
        assertEquals("", sd.push(0xE4 + 3));
        assertEquals("\uFFFD", sd.flush());
        // an invalid byte is emitted at once as U+FFFD
        assertEquals("\uFFFD", sd.push(0x80 + 3));
        assertEquals(" world", sd.push(3186));
        assertEquals("", sd.flush());
    }

    @Test
    void longPromptRoundTrips() {
        var sb = new StringBuilder();
        String[] words = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "🦊", "東京", "naïve"};
        var r = new java.util.Random(7);
        while (sb.length() < 40_000) sb.append(words[r.nextInt(words.length)]).append(r.nextInt(5) == 0 ? "\n" : " ");
        String text = sb.toString();
        int[] ids = LLAMA2.encode(text, true);
        assertTrue(ids.length > 8000, "ids " + ids.length);
        assertEquals(text, LLAMA2.decode(ids));
        assertArrayEquals(ids, LLAMA2.encode(text, true), "encoding is deterministic");
    }

    @Test
    void malformedFilesNameTheFile(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.bin");
        Files.write(f, new byte[]{1, 0});
        var e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizer.load(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());

        var out = new ByteArrayOutputStream();
        out.write(le(10));
        writeToken(out, 0f, "<unk>");
        writeToken(out, 0f, "<s>");
        out.write(le(Float.floatToIntBits(0f)));
        out.write(le(100)); // length beyond the end
        out.write("abc".getBytes(StandardCharsets.UTF_8));
        Files.write(f, out.toByteArray());
        e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizer.load(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("token 2"), e.getMessage());

        e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizer.load(dir.resolve("none.bin")));
        assertTrue(e.getMessage().contains("none.bin"), e.getMessage());

        var t = Llama2cTokenizer.load(TestModels.tok512(), 512);
        assertEquals(512, t.vocabSize());
        e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizer.load(TestModels.tok512(), 1000));
        assertTrue(e.getMessage().contains("vocab_size is 1000"), e.getMessage());
    }

    @Test
    void tinyHandBuiltVocabMergesByScore() {
        var out = new ByteArrayOutputStream();
        out.writeBytes(le(8));
        writeToken(out, 0f, "<unk>");
        writeToken(out, 0f, "\n<s>\n");
        writeToken(out, 0f, "\n</s>\n");
        for (int b = 0; b < 256; b++) writeToken(out, 0f, String.format("<0x%02X>", b));
        String[] toks = {" ", "a", "b", "c", "ab", "bc", " a", " abc", "abc"};
        float[] sc = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
        for (int i = 0; i < toks.length; i++) writeToken(out, sc[i], toks[i]);
        var t = Llama2cTokenizer.parse(out.toByteArray(), "tiny", -1);
        int base = 259;
        // " abc": symbols ' ' a b c; best pair by score: ab (-5) vs bc (-6) vs " a" (-7) → ab, then " " + ab? not in
        // vocab, "abc" (-9)  → ' ' abc ; then " abc" (-8)
        assertArrayEquals(new int[]{base + 7}, t.encode("abc", false));
        // "bca": ' ' b c a → bc → ' ' bc a  (" b", "bca" absent)
        assertArrayEquals(new int[]{base, base + 5, base + 1}, t.encode("bca", false));
        // "d" is not in the vocab: byte fallback
        assertArrayEquals(new int[]{base, 'd' + 3}, t.encode("d", false));
    }

    static String streamDecode(Tokenizer t, int[] ids) {
        var sd = t.newStreamDecoder();
        var sb = new StringBuilder();
        for (int id : ids) sb.append(sd.push(id));
        return sb.append(sd.flush()).toString();
    }

    static byte[] le(int v) { return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array(); }

    static void writeToken(ByteArrayOutputStream out, float score, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(le(Float.floatToIntBits(score)));
        out.writeBytes(le(b.length));
        out.writeBytes(b);
    }
}
