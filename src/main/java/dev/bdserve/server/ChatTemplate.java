package dev.bdserve.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.bdserve.model.gguf.GgufFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns chat messages into a prompt. With a Jinja template (tokenizer_config.json's {@code chat_template},
 * or {@code --chat-template FILE}) it renders it as Hugging Face does (trim_blocks, lstrip_blocks) with
 * {@code messages}, {@code add_generation_prompt}, {@code bos_token}, {@code eos_token} and
 * {@code raise_exception}. Without one it uses the plain format documented in docs/serving.md: one
 * {@code "<role>: <content>\n"} line per message, then {@code "assistant: "}.
 */
public final class ChatTemplate {
    private final String template;     // null: the plain format
    private final String bosToken, eosToken;
    private final Jinjava jinjava;

    public ChatTemplate(String template, String bosToken, String eosToken) {
        this.template = template;
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        if (template == null) {
            jinjava = null;
        } else {
            jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build());
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        }
    }

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

    public String bosToken() { return bosToken; }

    /** Called by templates: fails the rendering with the template's message. */
    public static String raiseException(String message) { throw new TemplateRaised(message); }

    private static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String m) { super(m, null, false, false); }
    }

    /** Renders messages (each with "role" and "content" strings). Bad templates or inputs are a 400. */
    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        if (template == null) {
            StringBuilder sb = new StringBuilder();
            for (Map<String, Object> m : messages) sb.append(m.get("role")).append(": ").append(m.get("content")).append('\n');
            if (addGenerationPrompt) sb.append("assistant: ");
            return sb.toString();
        }
        Map<String, Object> ctx = new HashMap<>();
        ctx.put("messages", messages);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bosToken);
        ctx.put("eos_token", eosToken);
        RenderResult r;
        try {
            r = jinjava.renderForResult(template, ctx);
        } catch (TemplateRaised e) {
            throw ApiException.badRequest(e.getMessage());
        } catch (RuntimeException e) {
            throw ApiException.badRequest("the chat template failed: " + e.getMessage());
        }
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                String msg = e.getMessage();
                Throwable cause = e.getException();
                while (cause != null) {
                    if (cause instanceof TemplateRaised tr) { msg = tr.getMessage(); break; }
                    cause = cause.getCause();
                }
                throw ApiException.badRequest(msg);
            }
        }
        return r.getOutput();
    }
}
