package dev.bdserve.lab.train;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Synthetic adaptation tasks built from text the base model generates itself, each with a transformation of
 * the continuation whose effect can be measured on greedy generations:
 * <ul>
 *   <li>{@code caps}: the completion in ALL CAPS; accuracy = completions whose letters are ≥ 90% upper-case;</li>
 *   <li>{@code swap}: fixed word substitutions (happy → jolly, big → vast, play → frolic, girl → lass, dog → hound); accuracy = substitution rate, targets / (targets + sources)
 *   over all generated words of the map;</li>
 *   <li>{@code closing}: a fixed closing sentence appended (then EOS); accuracy = completions that contain it. (Stopping
 *   right after it is reported too, but stories260K never saw EOS in pre-training — llama2.c separates stories with
 *   BOS — and a small adapter on the frozen LM head rarely learns to emit it.)</li>
 *   <li>{@code text} / {@code swap-text}: plain-text language modelling on the stories as generated / with the
 *   substitutions (measured by held-out loss).</li>
 * </ul>
 */
public enum SynthTask {
    CAPS(true), SWAP(true), CLOSING(true), TEXT(false), SWAP_TEXT(false);

    /** The sentence the {@code closing} task appends. */
    public static final String CLOSING_SENTENCE = "The end, and that is all for today.";

    /** The {@code swap} substitutions (whole words, capitalised forms included). */
    public static final Map<String, String> SWAPS;
    static {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("happy", "jolly");
        m.put("big", "vast");
        m.put("play", "frolic");
        m.put("girl", "lass");
        m.put("dog", "hound");
        SWAPS = java.util.Collections.unmodifiableMap(m);
    }
    private static final Pattern WORD = Pattern.compile("\\b(" + String.join("|", SWAPS.keySet()) + ")\\b", Pattern.CASE_INSENSITIVE);

    private final boolean promptCompletion;

    SynthTask(boolean promptCompletion) { this.promptCompletion = promptCompletion; }

    /** True for JSONL prompt/completion tasks, false for plain-text LM tasks. */
    public boolean promptCompletion() { return promptCompletion; }

    public String cliName() { return name().toLowerCase(Locale.ROOT).replace('_', '-'); }

    public static SynthTask parse(String s) {
        for (SynthTask t : values()) if (t.cliName().equalsIgnoreCase(s)) return t;
        throw new IllegalArgumentException("unknown task '" + s + "' (expected caps, swap, closing, text or swap-text)");
    }

    /** The transformed continuation (or whole story for the text tasks). */
    public String transform(String text) {
        return switch (this) {
            case CAPS -> text.toUpperCase(Locale.ROOT);
            case SWAP, SWAP_TEXT -> swapWords(text);
            case CLOSING -> text.stripTrailing() + " " + CLOSING_SENTENCE;
            case TEXT -> text;
        };
    }

    static String swapWords(String text) {
        Matcher m = WORD.matcher(text);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            String w = m.group(1), rep = SWAPS.get(w.toLowerCase(Locale.ROOT));
            if (Character.isUpperCase(w.charAt(0))) rep = Character.toUpperCase(rep.charAt(0)) + rep.substring(1);
            m.appendReplacement(sb, rep);
        }
        m.appendTail(sb);
        return sb.toString();
    }

    /**
     * The task's accuracy over generated completions.
     *
     * @param accuracy fraction of completions transformed (caps, closing) or substitution rate (swap)
     * @param detail   a one-line explanation with counts
     */
    public record Score(double accuracy, String detail) {}

    public Score score(List<String> completions) {
        int n = completions.size();
        switch (this) {
            case CAPS -> {
                int ok = 0;
                long upper = 0, letters = 0;
                for (String c : completions) {
                    int u = 0, l = 0;
                    for (int i = 0; i < c.length(); i++) {
                        char ch = c.charAt(i);
                        if (Character.isLetter(ch)) { l++; if (Character.isUpperCase(ch)) u++; }
                    }
                    upper += u;
                    letters += l;
                    if (l >= 5 && u >= 0.9 * l) ok++;
                }
                return new Score(ok / (double) n, String.format(Locale.ROOT, "%d/%d completions ≥ 90%% upper-case; %.1f%% of all generated letters upper-case",
                        ok, n, 100.0 * upper / Math.max(1, letters)));
            }
            case SWAP -> {
                int src = 0, dst = 0;
                Pattern target = Pattern.compile("\\b(" + String.join("|", SWAPS.values()) + ")\\b", Pattern.CASE_INSENSITIVE);
                for (String c : completions) {
                    Matcher a = WORD.matcher(c);
                    while (a.find()) src++;
                    Matcher b = target.matcher(c);
                    while (b.find()) dst++;
                }
                return new Score(dst / (double) Math.max(1, src + dst), String.format(Locale.ROOT,
                        "substitution rate %d/%d (target words / (target + source words) in %d completions)", dst, src + dst, n));
            }
            case CLOSING -> {
                int ok = 0;
                int ends = 0;
                for (String c : completions) {
                    if (c.contains(CLOSING_SENTENCE)) ok++;
                    if (c.strip().endsWith(CLOSING_SENTENCE)) ends++;
                }
                return new Score(ok / (double) n, String.format(Locale.ROOT, "%d/%d completions close with \"%s\" (%d/%d stop right after it)",
                        ok, n, CLOSING_SENTENCE, ends, n));
            }
            default -> throw new IllegalStateException(cliName() + " is measured by held-out loss, not an accuracy");
        }
    }
}
