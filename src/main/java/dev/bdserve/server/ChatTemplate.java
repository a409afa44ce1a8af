package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bdserve.model.gguf.GgufFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Turns chat messages into a prompt. With a Jinja template (tokenizer_config.json's {@code chat_template},
 * a GGUF file's {@code tokenizer.chat_template}, or {@code --chat-template FILE}) it renders it as Hugging Face's
 * {@code apply_chat_template} does under Python's jinja2 ({@link Jinja}: trim_blocks, lstrip_blocks, loop controls)
 * with {@code messages}, {@code tools}, {@code add_generation_prompt}, {@code bos_token}, {@code eos_token}, the
 * {@code raise_exception} and {@code strftime_now} globals and any extra template arguments (vLLM's
 * {@code chat_template_kwargs}, e.g. Qwen3's {@code enable_thinking}). Without one it uses the plain format
 * documented in docs/serving.md: one {@code "<role>: <content>\n"} line per message, then {@code "assistant: "}.
 */
public final class ChatTemplate {
    private final String template;     // null: the plain format
    private final Jinja jinja;         // the template, parsed once; null when plain or unparsable
    private final String parseError;   // why the template does not parse, or null
    private final String bosToken, eosToken;
    private final Supplier<LocalDateTime> clock;
    private final ToolCallParser toolParser;   // the tool-call format (option or detected), or null: not parsed

    public ChatTemplate(String template, String bosToken, String eosToken) {
        this(template, bosToken, eosToken, LocalDateTime::now);
    }

    /**
     * A template whose {@code strftime_now} reads {@code clock} (tests fix it). A template that does not parse
     * still serves completions; chat requests get a 400 naming its line and reason.
     */
    ChatTemplate(String template, String bosToken, String eosToken, Supplier<LocalDateTime> clock) {
        this.template = template;
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        this.clock = clock;
        Jinja parsed = null;
        String error = null;
        try {
            if (template != null) parsed = new Jinja(template);
        } catch (Jinja.TemplateException e) {
            error = "the chat template does not parse: " + e.getMessage();
        }
        this.jinja = parsed;
        this.parseError = error;
        this.toolParser = ToolCallParser.detect(template);
    }

    private ChatTemplate(ChatTemplate t, ToolCallParser toolParser) {
        this.template = t.template;
        this.jinja = t.jinja;
        this.parseError = t.parseError;
        this.bosToken = t.bosToken;
        this.eosToken = t.eosToken;
        this.clock = t.clock;
        this.toolParser = toolParser;
    }

    /**
     * This template with tool calls read in the format {@code name} ({@code --tool-call-parser}: llama3_json,
     * hermes, mistral, or auto: detected from the template's text). IllegalArgumentException for another name.
     */
    public ChatTemplate withToolCallParser(String name) {
        ToolCallParser p = ToolCallParser.named(name);
        return new ChatTemplate(this, p == null ? ToolCallParser.detect(template) : p);
    }

    /** The tool-call format of this template's model, or null when none is known (calls are then not parsed). */
    ToolCallParser toolParser() { return toolParser; }

    /** The plain format (for models without a template). */
    public static ChatTemplate plain() { return new ChatTemplate(null, null, null); }

    /**
     * The template of a model: {@code override} (a file) when given, else tokenizer_config.json next to the
     * model (its folder, or the folder of a single-file model), else the plain format.
     */
    public static ChatTemplate forModel(Path model, Path override) {
        if (model.getFileName() != null && model.getFileName().toString().endsWith(".gguf") && Files.isRegularFile(model))
            return fromGguf(model, override);
        Path dir = Files.isDirectory(model) ? model : model.toAbsolutePath().getParent();
        String tpl = null, bos = null, eos = null;
        Path cfg = dir == null ? null : dir.resolve("tokenizer_config.json");
        try {
            if (cfg != null && Files.isRegularFile(cfg)) {
                JsonNode n = new ObjectMapper().readTree(cfg.toFile());
                bos = tokenText(n.get("bos_token"));
                eos = tokenText(n.get("eos_token"));
                JsonNode t = n.get("chat_template");
                if (t != null && t.isTextual()) tpl = t.asText();
                else if (t != null && t.isArray()) {
                    for (JsonNode e : t) if ("default".equals(e.path("name").asText())) tpl = e.path("template").asText(null);
                    if (tpl == null && !t.isEmpty()) tpl = t.get(0).path("template").asText(null);
                }
            }
            if (override != null) tpl = Files.readString(override);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the chat template: " + e.getMessage(), e);
        }
        return new ChatTemplate(tpl, bos == null ? "<s>" : bos, eos == null ? "</s>" : eos);
    }

    /** A GGUF file's {@code tokenizer.chat_template}, with BOS and EOS spelled as its vocabulary spells them. */
    private static ChatTemplate fromGguf(Path model, Path override) {
        String tpl, bos = "<s>", eos = "</s>";
        try (GgufFile f = GgufFile.open(model)) {
            tpl = f.string("tokenizer.chat_template", null);
            List<Object> tokens = f.list("tokenizer.ggml.tokens", List.of());
            long b = f.longValue("tokenizer.ggml.bos_token_id", -1), e = f.longValue("tokenizer.ggml.eos_token_id", -1);
            if (b >= 0 && b < tokens.size()) bos = String.valueOf(tokens.get((int) b));
            if (e >= 0 && e < tokens.size()) eos = String.valueOf(tokens.get((int) e));
        }
        try {
            if (override != null) tpl = Files.readString(override);
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read the chat template: " + ex.getMessage(), ex);
        }
        return new ChatTemplate(tpl, bos, eos);
    }

    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        JsonNode c = n.get("content");
        return c != null && c.isTextual() ? c.asText() : null;
    }

    public boolean isPlain() { return template == null; }

    /** Why the template does not parse (line and reason), or null when it does or there is none. */
    public String parseError() { return parseError; }

    public String bosToken() { return bosToken; }

    /** Renders messages (each with "role" and "content" strings) without tools. */
    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        return render(messages, null, addGenerationPrompt, Map.of());
    }

    /**
     * Renders messages (maps as the OpenAI API spells them: role, content, tool_calls, reasoning_content, ...),
     * the request's tool definitions (null: none) and extra template arguments, which may override every
     * argument but {@code messages}. A template error, or the template's own {@code raise_exception}, is a 400.
     */
    public String render(List<? extends Map<String, ?>> messages, List<?> tools, boolean addGenerationPrompt, Map<String, ?> kwargs) {
        if (template == null) {
            StringBuilder sb = new StringBuilder();
            for (Map<String, ?> m : messages) sb.append(m.get("role")).append(": ").append(m.get("content")).append('\n');
            if (addGenerationPrompt) sb.append("assistant: ");
            return sb.toString();
        }
        if (jinja == null) throw ApiException.badRequest(parseError);
        Map<String, Object> ctx = new HashMap<>();
        ctx.put("tools", tools);
        ctx.put("documents", null);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bosToken);
        ctx.put("eos_token", eosToken);
        if (kwargs != null) ctx.putAll(kwargs);
        ctx.put("messages", messages);
        try {
            return jinja.render(ctx, clock);
        } catch (Jinja.Raised e) {
            throw ApiException.badRequest(e.getMessage());
        } catch (Jinja.TemplateException e) {
            throw ApiException.badRequest("the chat template failed: " + e.getMessage());
        }
    }
}
