package dev.bdserve.server;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The real chat templates in src/test/resources/dev/bdserve/server/templates, rendered with every conversation
 * there, equal byte for byte to Python jinja2's renders under Hugging Face's settings (render_golden.py's goldens),
 * errors of {@code raise_exception} included. A conversation naming {@code templates} is rendered with those only (as
 * render_golden.py does), and every golden must belong to a render, so none is left unchecked.
 */
class ChatTemplateGoldenTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final LocalDateTime NOW = LocalDateTime.of(2024, 7, 26, 12, 0, 0);   // render_golden.py's clock

    @TestFactory
    Stream<DynamicTest> rendersAsJinja2() throws Exception {
        Path dir = Path.of(ChatTemplateGoldenTest.class.getResource("templates").toURI());
        Map<String, Map<String, String>> tokens = JSON.readValue(dir.resolve("tokens.json").toFile(), new TypeReference<>() {});
        List<Path> conversations;
        try (Stream<Path> s = Files.list(dir.resolve("conversations"))) {
            conversations = s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
        assertFalse(conversations.isEmpty());
        List<DynamicTest> tests = new ArrayList<>();
        java.util.Set<String> stems = new java.util.TreeSet<>();
        for (var t : tokens.entrySet()) {
            ChatTemplate template = new ChatTemplate(Files.readString(dir.resolve(t.getKey() + ".jinja")),
                    t.getValue().get("bos_token"), t.getValue().get("eos_token"), () -> NOW);
            for (Path conv : conversations) {
                List<?> only = (List<?>) JSON.readValue(conv.toFile(), Map.class).get("templates");
                if (only != null && !only.contains(t.getKey())) continue;
                String stem = t.getKey() + "__" + conv.getFileName().toString().replace(".json", "");
                stems.add(stem);
                tests.add(DynamicTest.dynamicTest(stem, () -> check(template, conv, dir.resolve("golden"), stem)));
            }
        }
        List<String> orphans;
        try (Stream<Path> s = Files.list(dir.resolve("golden"))) {
            orphans = s.map(p -> p.getFileName().toString()).filter(f -> f.contains("__"))
                    .filter(f -> !stems.contains(f.substring(0, f.lastIndexOf('.')))).sorted().toList();
        }
        tests.add(DynamicTest.dynamicTest("every golden is rendered", () -> assertEquals(List.of(), orphans,
                "goldens in " + dir.resolve("golden") + " without a template and conversation; rerun render_golden.py")));
        return tests.stream();
    }

    /** snippets.json: small templates of the jinja2 features chat templates use, against golden/snippets.json. */
    @TestFactory
    Stream<DynamicTest> snippetsRenderAsJinja2() throws Exception {
        Path dir = Path.of(ChatTemplateGoldenTest.class.getResource("templates").toURI());
        List<Map<String, Object>> cases = JSON.readValue(dir.resolve("snippets.json").toFile(), new TypeReference<>() {});
        List<Map<String, String>> golden = JSON.readValue(dir.resolve("golden/snippets.json").toFile(), new TypeReference<>() {});
        assertEquals(cases.size(), golden.size(), "render_golden.py renders every snippet");
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < cases.size(); i++) {
            String template = (String) cases.get(i).get("template");
            @SuppressWarnings("unchecked") Map<String, Object> vars = (Map<String, Object>) cases.get(i).get("vars");
            Map<String, String> g = golden.get(i);
            tests.add(DynamicTest.dynamicTest("snippet " + i + ": " + template, () -> {
                if (g.containsKey("output")) {
                    assertEquals(g.get("output"), new Jinja(template).render(vars, () -> NOW));
                } else {
                    // any error where jinja2 has one; raise_exception's message exactly
                    var e = assertThrows(Jinja.TemplateException.class, () -> new Jinja(template).render(vars, () -> NOW), g.toString());
                    if (g.get("error").equals("TemplateError")) assertEquals(g.get("message"), e.getMessage());
                }
            }));
        }
        return tests.stream();
    }

    @SuppressWarnings("unchecked")
    static void check(ChatTemplate template, Path conv, Path golden, String stem) throws Exception {
        Map<String, Object> c = JSON.readValue(conv.toFile(), new TypeReference<>() {});
        var messages = (List<Map<String, Object>>) c.get("messages");
        var tools = (List<Object>) c.get("tools");
        boolean addGen = Boolean.TRUE.equals(c.get("add_generation_prompt"));
        var kwargs = (Map<String, Object>) c.getOrDefault("kwargs", Map.of());
        Path txt = golden.resolve(stem + ".txt"), err = golden.resolve(stem + ".error");
        if (Files.exists(err)) {
            ApiException e = assertThrows(ApiException.class, () -> template.render(messages, tools, addGen, kwargs));
            assertEquals(400, e.status());
            assertEquals(Files.readString(err), e.getMessage());
        } else {
            String out = template.render(messages, tools, addGen, kwargs);
            String dump = System.getProperty("bdserve.golden.dump");   // a folder: write the renders to diff by hand
            if (dump != null) Files.writeString(Files.createDirectories(Path.of(dump)).resolve(stem + ".txt"), out);
            assertEquals(Files.readString(txt), out);
        }
    }
}
