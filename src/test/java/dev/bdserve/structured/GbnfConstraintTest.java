package dev.bdserve.structured;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** GBNF grammars: the notation's features accept and reject what they should, walks match, errors name line and column. */
class GbnfConstraintTest {
    static final String FEATURES = """
            # a comment line
            root ::= item ("," ws item)* tail   # trailing comment
            item ::= num | word | quoted | group
            num  ::= "-"? [0-9]+ ("." [0-9]{1,2})?
            word ::= [a-zA-Z_] [a-zA-Z0-9_]{0,5}
            quoted ::= "\\"" ( [^"\\\\\\n] | "\\\\" ["\\\\n] )* "\\""
            group ::= "(" item
                      ( "|" item )*
                      ")"
            ws ::= [ \\t]?
            tail ::= "" | "\\n" | "\\x21" | "\\u00e9" | "\\U0001F600" | [\\]\\-]
            """;

    @Test
    void featuresAcceptAndReject() throws Exception {
        Constraint c = Constraint.grammar(FEATURES);
        for (String s : List.of("1", "-12.5", "abc_12,x", "\"q\\\"uo\\\\te\"", "(a|b|(1))", "1, 2,\tz", "a\n", "a!", "aé", "a😀", "a]", "a-"))
            assertTrue(Walks.accepts(c, s), s);
        for (String s : List.of("", "1.", "1.234", "abcdefgh", "\"a", "\"a\nb\"", "(a|)", "a,", "1  ,2", "a\n\n", "aè", "a\\"))
            assertFalse(Walks.accepts(c, s), s);
    }

    @Test
    void walksMatchTheEquivalentRegex() throws Exception {
        Constraint c = Constraint.grammar("""
                root ::= greeting " " name ( "!" | "." )
                greeting ::= "hi" | "hello"
                name ::= [A-Z] [a-z]{1,8}
                """);
        Pattern p = Pattern.compile("(hi|hello) [A-Z][a-z]{1,8}[!.]");
        for (String v : List.of("qwen3", "llama3", "gemma3"))
            for (String t : Walks.walks(c, Walks.real(v), 11, 5, 100)) assertTrue(p.matcher(t).matches(), v + ": '" + t + "'");
        Constraint arith = Constraint.grammar(MaskTwinTest.ARITH);
        for (String s : List.of("1+2*3", "(1+2)*-3", "( 1-2 )/4", "((7))", "-(-1)")) assertTrue(Walks.accepts(arith, s), s);
        for (String s : List.of("1+", "(1", "1**2", "1234")) assertFalse(Walks.accepts(arith, s), s);
    }

    @Test
    void errorsNameLineAndColumn() {
        assertError("root ::= foo", "undefined rule foo", "line 1, column 10");
        assertError("start ::= \"a\"", "no rule named root", null);
        assertError("root ::= \"a\"\nx ::= \"abc", "unterminated string", "line 2, column 7");
        assertError("root ::= [abc", "unterminated character class", "line 1, column 10");
        assertError("root ::= [z-a]", "out of order", null);
        assertError("root ::= root \"a\" | \"b\"", "left-recursive", null);
        assertError("root ::= x\nx ::= \"a\"? x \"b\"", "left-recursive", null);
        assertError("root ::= \"a\"\nroot ::= \"b\"", "defined twice", "line 2, column 1");
        assertError("root ::= \"a\"{3,2}", "max < min", "line 1, column 13");
        assertError("root ::= \"a\" )", "unexpected character", "line 1, column 14");
        assertError("root ::= \"\\q\"", "unknown escape", "line 1, column 11");
        assertError("root \"a\"", "expected ::=", "line 1, column 6");
        assertError("", "empty grammar", "line 1, column 1");
        assertError("root ::= " + "(".repeat(5000) + "\"a\"" + ")".repeat(5000), "nested deeper", "line 1, column 210");
    }

    private static void assertError(String g, String inMessage, String location) {
        ConstraintException e = assertThrows(ConstraintException.class, () -> Constraint.grammar(g), g);
        assertTrue(e.getMessage().contains(inMessage), e.getMessage());
        if (location != null) assertEquals(location, e.location(), e.getMessage());
    }
}
