package dev.bdserve.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * One step as the runner takes it, built from the scheduler's work, and what each row of its logits is for: sampling
 * a sequence's next token (the last position of a chunk that reaches the end of its tokens), or the logprob of a
 * prompt token (each prompt position of a request that asks for them).
 *
 * @param batch      the tokens, positions, adapters, logit rows and block tables
 * @param rows       [rows] what each logits row is for, in the order of {@code batch.logitRows()}
 * @param promptOnly sequences with max_tokens 0 whose prompt completes in this step: nothing is sampled for them
 */
record StepPlan(StepBatch batch, List<Row> rows, List<Sequence> promptOnly) {
    /** A logits row: the next token of seq (target −1), or the logprob of its prompt token {@code target}. */
    record Row(Sequence seq, int target) {
        boolean samples() { return target < 0; }
    }

    static StepPlan of(List<Scheduler.Work> work) {
        int T = 0;
        for (Scheduler.Work w : work) T += w.n();
        int S = work.size();
        int[] toks = new int[T], pos = new int[T], idx = new int[T], ads = new int[T];   // [T]
        int[][] tables = new int[S][];                                                    // [S][blocks]
        IntList logitRows = new IntList(S);
        List<Row> rows = new ArrayList<>(S);
        List<Sequence> promptOnly = new ArrayList<>();
        int k = 0;
        for (int i = 0; i < S; i++) {
            Scheduler.Work w = work.get(i);
            Sequence s = w.seq();
            tables[i] = s.table.toArray();
            int aid = s.adapter == null ? -1 : s.adapter.runnerId;
            int[] src = s.tokens.raw();
            for (int j = 0; j < w.n(); j++) {
                int p = w.from() + j;
                toks[k] = src[p];
                pos[k] = p;
                idx[k] = i;
                ads[k] = aid;
                if (s.promptScoring != null && s.promptScoring.wantsRowAt(p)) { logitRows.add(k); rows.add(new Row(s, p + 1)); }
                k++;
            }
            if (w.from() + w.n() == s.tokens.size()) {                               // the chunk reaches the end
                if (s.maxTokens > 0) { logitRows.add(k - 1); rows.add(new Row(s, -1)); }
                else promptOnly.add(s);                                                // max_tokens 0: the prompt only
            }
        }
        return new StepPlan(new StepBatch(toks, pos, idx, ads, logitRows.toArray(), tables), rows, promptOnly);
    }
}
