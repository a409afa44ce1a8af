package dev.bdserve.server;

import dev.bdserve.engine.PromptLogprobs;
import dev.bdserve.engine.TokenEvent;

import java.util.ArrayList;
import java.util.List;

/** One choice of a response as it is generated: its text, its tokens, and how it ended. */
final class Choice {
    final StringBuilder text = new StringBuilder();
    final List<TokenEvent> tokens = new ArrayList<>();
    final List<Integer> offsets = new ArrayList<>();
    PromptLogprobs prompt;     // echo with logprobs: the prompt's logprobs, once the engine computed them
    int streamedChars;         // text chars already sent
    int tokensOut;
    String finish;
    boolean done;
    ToolCallStreamer tools;    // chat with tools: reads the text for tool calls; null otherwise

    void add(TokenEvent e) {
        offsets.add(text.length());
        text.append(e.text());
        tokens.add(e);
        tokensOut++;
    }
}
