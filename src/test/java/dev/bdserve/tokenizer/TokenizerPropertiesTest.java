package dev.bdserve.tokenizer;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Round-trip and streaming properties on random Unicode text and random id sequences. */
class TokenizerPropertiesTest {
    static final Llama2cTokenizer LLAMA2 = Llama2cTokenizer.load(TestModels.llama2());
    static final Llama2cTokenizer TOK512 = Llama2cTokenizer.load(TestModels.tok512());
    static Path tmp;
    static HfTokenizer hf512;

    @BeforeContainer
    static void convert() throws Exception {
        tmp = Files.createTempDirectory("bdserve-tok-props");
        HfTokenizerJsonWriter.write(TOK512, tmp);
        hf512 = HfTokenizer.load(tmp);
    }

    @AfterContainer
    static void cleanup() throws Exception {
        hf512.close();
        try (var s = Files.walk(tmp)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    @Provide
    Arbitrary<String> text() {
        Arbitrary<Integer> ascii = Arbitraries.integers().between(0x20, 0x7E);
        Arbitrary<Integer> ws = Arbitraries.of((int) ' ', (int) '\n', (int) '\t', (int) ' ');
        Arbitrary<Integer> any = Arbitraries.integers().between(0, 0x10FFFF)
                .filter(cp -> cp < Character.MIN_SURROGATE || cp > Character.MAX_SURROGATE);
        Arbitrary<Integer> bmp = Arbitraries.integers().between(0xA0, 0xFFFF)
                .filter(cp -> cp < Character.MIN_SURROGATE || cp > Character.MAX_SURROGATE);
        Arbitrary<Integer> emoji = Arbitraries.integers().between(0x1F300, 0x1FAFF);
        return Arbitraries.frequencyOf(
                        net.jqwik.api.Tuple.of(10, ascii), net.jqwik.api.Tuple.of(3, ws), net.jqwik.api.Tuple.of(2, bmp),
                        net.jqwik.api.Tuple.of(1, emoji), net.jqwik.api.Tuple.of(1, any))
                .list().ofMaxSize(60)
                .map(cps -> {
                    var sb = new StringBuilder();
                    for (int cp : cps) sb.appendCodePoint(cp);
                    return sb.toString();
                });
    }

    @Property(tries = 300)
    void llama2cRoundTrip(@ForAll("text") String s) {
        for (Llama2cTokenizer t : List.of(LLAMA2, TOK512)) {
            int[] ids = t.encode(s, true);
            assertEquals(s, t.decode(ids));
            assertEquals(s, Llama2cTokenizerTest.streamDecode(t, ids));
            assertEquals(s.isEmpty() ? "" : " " + s, t.decode(t.encode(s, false)));
        }
    }

    @Provide
    Arbitrary<int[]> llama2Ids() {
        // bias towards byte tokens so that characters get split and invalid UTF-8 occurs
        Arbitrary<Integer> id = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(3, Arbitraries.integers().between(0, 31999)),
                net.jqwik.api.Tuple.of(5, Arbitraries.integers().between(3, 258)),
                net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0, 2)));
        return id.list().ofMaxSize(40).map(l -> l.stream().mapToInt(Integer::intValue).toArray());
    }

    @Property(tries = 500)
    void streamDecoderConcatenationEqualsDecode(@ForAll("llama2Ids") int[] ids) {
        assertEquals(LLAMA2.decode(ids), Llama2cTokenizerTest.streamDecode(LLAMA2, ids));
    }

    @Property(tries = 500)
    void utf8StreamSplitAnywhereEqualsWholeDecode(@ForAll byte[] bytes, @ForAll("cuts") int[] cuts) {
        var u = new Utf8Stream();
        var sb = new StringBuilder();
        int pos = 0;
        for (int c : cuts) {
            int end = Math.min(bytes.length, pos + c);
            sb.append(u.push(bytes, pos, end - pos));
            pos = end;
        }
        sb.append(u.push(bytes, pos, bytes.length - pos)).append(u.flush());
        assertEquals(new String(bytes, java.nio.charset.StandardCharsets.UTF_8), sb.toString());
    }

    @Provide
    Arbitrary<int[]> cuts() {
        return Arbitraries.integers().between(0, 5).list().ofMaxSize(30)
                .map(l -> l.stream().mapToInt(Integer::intValue).toArray());
    }

    @Property(tries = 200)
    void convertedHfTokenizerAgreesWithLlama2c(@ForAll("text") String s) {
        int[] ids = TOK512.encode(s, true);
        assertArrayEquals(ids, hf512.encode(s, true), () -> "text \"" + s + "\"");
        assertEquals(s, hf512.decode(ids));
        assertEquals(s, Llama2cTokenizerTest.streamDecode(hf512, ids));
    }
}
