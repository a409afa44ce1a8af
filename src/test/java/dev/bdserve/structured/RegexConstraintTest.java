package dev.bdserve.structured;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Regex constraints agree with java.util.regex (whose syntax and semantics the supported subset shares) on random
 * strings and on strings built from the regex's own pieces; random walks on real vocabularies end in matches; what is
 * not supported is refused with its offset. Choice constraints too.
 */
class RegexConstraintTest {
    static final String ALPHABET = "abcxyzABCZ019-_.@ \t\néüžcomorgdts&()[]{}\\|😀";

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"[A-Z]{3}-\\d{2,4}", "(cat|dog)s?", "a*b+c?", "\\w+@\\w+\\.(com|org)", "[^aeiou\\s]{1,5}",
            "(?:ab){2}|x{0,2}", "^\\s*-?\\d+(\\.\\d{1,2})?\\s*$", "é[ü-ž]+.", "(a|b)*?c", "\\x41\\u00e9[\\t\\n]", "\\D\\W\\S",
            "[-a]z[a-]", "(?<year>\\d{4})-(0[1-9]|1[0-2])", "[.]\\.+", "x{2,}", "\\(\\)\\[\\]\\{\\}\\\\\\|", ".[^x]?.{2}"})
    void agreesWithJavaRegex(String regex) throws Exception {
        Constraint c = Constraint.regex(regex);
        Pattern p = Pattern.compile(regex);
        Random r = new Random(regex.hashCode());
        int[] cps = ALPHABET.codePoints().toArray();
        List<String> walked = Walks.walks(c, TokenVocabularies.bytes(), regex.hashCode(), 30, 5000);
        for (String t : walked) assertTrue(p.matcher(t).matches(), "walk output '" + t + "'");
        int matched = 0, tried = 0;
        for (int k = 0; k < 3000; k++) {
            String s;
            if (k % 2 == 0) {
                StringBuilder b = new StringBuilder();
                int len = r.nextInt(9);
                for (int i = 0; i < len; i++) b.appendCodePoint(cps[r.nextInt(cps.length)]);
                s = b.toString();
            } else {
                s = mutate(walked.get(r.nextInt(walked.size())), cps, r);
            }
            boolean want = p.matcher(s).matches();
            if (want) matched++;
            tried++;
            assertEquals(want, Walks.accepts(c, s), "'" + s + "'");
        }
        assertTrue(matched > 0 && matched < tried, matched + " of " + tried + " strings matched; the test would be weak");
    }

    /** {@code s} with one code point replaced, inserted or deleted (or unchanged). */
    private static String mutate(String s, int[] cps, Random r) {
        int[] a = s.codePoints().toArray();
        StringBuilder b = new StringBuilder();
        int at = a.length == 0 ? 0 : r.nextInt(a.length), op = r.nextInt(4);
        for (int i = 0; i <= a.length; i++) {
            if (i == at && op == 1) b.appendCodePoint(cps[r.nextInt(cps.length)]);
            if (i == a.length) break;
            if (i == at && op == 2) continue;
            b.appendCodePoint(i == at && op == 3 ? cps[r.nextInt(cps.length)] : a[i]);
        }
        return b.toString();
    }

    @Test
    void walksOnRealVocabulariesMatch() throws Exception {
        for (String regex : List.of("[A-Z]{3}-\\d{2,4}", "\\w{1,12}@\\w{1,8}\\.(com|org)", "(\\d{1,3}\\.){3}\\d{1,3}", "[^\\n]{0,20}\\n")) {
            Constraint c = Constraint.regex(regex);
            for (String v : List.of("qwen3", "llama3", "gemma3"))
                for (String t : Walks.walks(c, Walks.real(v), 3, 4, 200))
                    assertTrue(Pattern.matches(regex, t), regex + " on " + v + ": '" + t + "'");
        }
    }

    @Test
    void unsupportedSyntaxIsRefusedWithItsOffset() {
        assertError("ab(?=c)", "lookaround", "offset 2");
        assertError("a(?<!b)", "lookaround", "offset 1");
        assertError("(a)\\1", "backreferences", "offset 3");
        assertError("(?<n>a)\\k<n>", "backreferences", "offset 7");
        assertError("\\bword", "word boundaries", "offset 0");
        assertError("a(b", "missing )", "offset 1");
        assertError("ab)", "unbalanced", "offset 2");
        assertError("*a", "nothing to repeat", "offset 0");
        assertError("a{3,2}", "max < min", "offset 1");
        assertError("a{x}", "repetition", "offset 1");
        assertError("[abc", "unterminated", "offset 0");
        assertError("[z-a]", "out of order", "offset 2");
        assertError("\\p{L}", "property", "offset 0");
        assertError("(?i)a", "flags", "offset 0");
        assertError("a++", "possessive", "offset 2");
        assertError("a^b", "^ is supported only", "offset 1");
        assertError("a$b", "$ is supported only", "offset 1");
        assertError("😀", "above U+FFFF", "offset 0");
        assertError("[a[b]]", "nested", "offset 2");
        assertError("\\q", "unknown escape", "offset 0");
        assertError("(".repeat(5000) + ")".repeat(5000), "nested deeper", "offset 200");
    }

    private static void assertError(String regex, String inMessage, String location) {
        ConstraintException e = assertThrows(ConstraintException.class, () -> Constraint.regex(regex), regex);
        assertTrue(e.getMessage().contains(inMessage), e.getMessage());
        assertEquals(location, e.location(), e.getMessage());
    }

    @Test
    void choiceAcceptsExactlyTheChoices() throws Exception {
        List<String> choices = List.of("yes", "no", "yes, but", "Zürich 😀", "a\"b\\c\n");
        Constraint c = Constraint.choice(choices);
        for (String s : choices) assertTrue(Walks.accepts(c, s), s);
        for (String s : List.of("", "ye", "yes,", "no ", "Zurich 😀", "a\"b\\c")) assertFalse(Walks.accepts(c, s), s);
        for (String v : List.of("qwen3", "llama3", "gemma3"))
            for (String t : Walks.walks(c, Walks.real(v), 5, 6, 50)) assertTrue(choices.contains(t), v + ": '" + t + "'");
        assertThrows(ConstraintException.class, () -> Constraint.choice(List.of()));
        ConstraintException e = assertThrows(ConstraintException.class, () -> Constraint.choice(List.of("a", "")));
        assertEquals("choice 1", e.location());
    }
}
