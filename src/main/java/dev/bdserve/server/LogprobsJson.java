package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.PromptLogprobs;
import dev.bdserve.engine.TokenEvent;
import dev.bdserve.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** Logprobs in the API's two shapes: completions' parallel lists and chat's list of per-token objects. */
final class LogprobsJson {
    private final Tokenizer tokenizer;

    LogprobsJson(Tokenizer tokenizer) { this.tokenizer = tokenizer; }

    private String tokenText(int id) { return tokenizer.decode(new int[]{id}); }

    private static double lp(float v) { return Float.isNaN(v) ? -9999.0 : Math.max(-9999.0, v); }

    /**
     * Completions' shape: tokens, token_logprobs, top_logprobs, text_offset; with {@code echoed} (echo) the prompt's
     * tokens come first, as vLLM answers them: the first with null logprob and alternatives, every later one with
     * log p(token | the tokens before it) and a dict of the {@code k} most likely tokens plus itself.
     * text_offset is each token's offset in the choice's text (the prompt's pieces as the tokenizer decodes them in
     * sequence); generated tokens' {@code offsets} are relative to the generated text.
     */
    ObjectNode completion(int k, Prompt echoed, PromptLogprobs promptLp, List<TokenEvent> toks, List<Integer> offsets) {
        ObjectNode o = Json.MAPPER.createObjectNode();
        ArrayNode tokens = o.putArray("tokens"), tlp = o.putArray("token_logprobs"), top = o.putArray("top_logprobs"), off = o.putArray("text_offset");
        int base = 0;
        if (echoed != null) {
            base = echoed.echoText(tokenizer).length();
            Tokenizer.StreamDecoder pieces = tokenizer.newStreamDecoder();
            int at = 0;                                              // chars of the prompt text before token i
            for (int i = 0; i < echoed.ids().length; i++) {
                int id = echoed.ids()[i];
                String s = tokenText(id);
                tokens.add(s);
                off.add(Math.min(at, base));
                at += pieces.push(id).length();
                boolean known = promptLp != null && i > 0 && !Float.isNaN(promptLp.logprobs()[i]);
                if (!known) {
                    tlp.addNull();
                    top.addNull();
                    continue;
                }
                tlp.add(lp(promptLp.logprobs()[i]));
                top.add(topDict(k, s, promptLp.logprobs()[i], promptLp.top().get(i)));
            }
        }
        for (int i = 0; i < toks.size(); i++) {
            TokenEvent e = toks.get(i);
            String s = tokenText(e.token());
            tokens.add(s);
            tlp.add(lp(e.logprob()));
            top.add(topDict(k, s, e.logprob(), e.top()));
            off.add(base + offsets.get(i));
        }
        return o;
    }

    /** The k most likely tokens by text with their logprobs, plus the actual token (so at most k + 1 entries). */
    private ObjectNode topDict(int k, String actual, float actualLogprob, List<TokenEvent.TopLogprob> alternatives) {
        ObjectNode t = Json.MAPPER.createObjectNode();
        for (TokenEvent.TopLogprob a : alternatives) if (t.size() < k) t.put(tokenText(a.token()), lp(a.logprob()));
        if (!t.has(actual)) t.put(actual, lp(actualLogprob));
        return t;
    }

    /** Chat's shape: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}. */
    ObjectNode chat(List<TokenEvent> toks, int top) {
        ObjectNode o = Json.MAPPER.createObjectNode();
        ArrayNode content = o.putArray("content");
        for (TokenEvent e : toks) {
            ObjectNode t = content.addObject();
            String s = tokenText(e.token());
            t.put("token", s);
            t.put("logprob", lp(e.logprob()));
            bytes(t, s);
            ArrayNode alts = t.putArray("top_logprobs");
            for (TokenEvent.TopLogprob a : e.top()) {
                if (alts.size() >= top) break;
                ObjectNode x = alts.addObject();
                String as = tokenText(a.token());
                x.put("token", as);
                x.put("logprob", lp(a.logprob()));
                bytes(x, as);
            }
        }
        return o;
    }

    private static void bytes(ObjectNode o, String s) {
        ArrayNode b = o.putArray("bytes");
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) b.add(x & 0xff);
    }
}
