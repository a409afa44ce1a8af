package dev.bdserve.lab.train;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The training loop: each step takes {@code batch} sequences (a fresh seeded shuffle every epoch), runs
 * forward and backward on worker threads (each accumulating into its own gradient buffers), averages
 * the loss over the batch's predicted tokens, clips the global gradient norm, and takes an AdamW step
 * at the scheduled learning rate. Deterministic for a seed and a thread count (a step's data depends
 * only on the step number, so a resumed run continues exactly).
 */
public final class LoraTrainer implements AutoCloseable {
    private final LlamaBackprop model;
    private final TrainableAdapter adapter;
    private final TrainData.Split data;
    private final TrainOptions opt;
    private final AdamW adam;
    private final LrSchedule schedule;
    private final ExecutorService pool;
    private final Worker[] workers;
    private int step;          // steps completed
    private long tokensSeen;   // predicted tokens processed by this process (for tokens/s)

    /** What a step reports. */
    public record StepResult(int step, double loss, double lr, double gradNorm, long tokens) {}

    /** Receives each finished step (e.g. a progress bar). */
    @FunctionalInterface
    public interface Listener { void onStep(StepResult r); }

    private final class Worker {
        final LlamaBackprop.Workspace ws = model.newWorkspace();
        final TrainableAdapter grads = adapter.gradientTwin();
    }

    public LoraTrainer(LlamaBackprop model, TrainableAdapter adapter, TrainData.Split data, TrainOptions opt) {
        this.model = model;
        this.adapter = adapter;
        this.data = data;
        this.opt = opt;
        this.adam = new AdamW(AdamW.Config.defaults(opt.weightDecay()), adapter.parameters(), adapter.gradients());
        this.schedule = opt.schedule();
        this.pool = opt.threads() > 1 ? Executors.newFixedThreadPool(opt.threads() - 1, r -> {
            Thread t = new Thread(r, "train-worker");
            t.setDaemon(true);
            return t;
        }) : null;
        this.workers = new Worker[opt.threads()];
        for (int i = 0; i < workers.length; i++) workers[i] = new Worker();
    }

    public int step() { return step; }
    public TrainableAdapter adapter() { return adapter; }
    public TrainData.Split data() { return data; }
    public int stepsPerEpoch() { return (data.train().size() + opt.batch() - 1) / opt.batch(); }

    /** The examples of 0-based step s: batch slot b is position (s mod stepsPerEpoch)·batch + b of epoch s/stepsPerEpoch's permutation. */
    List<TrainData.Example> batchOf(int s) {
        int n = data.train().size(), spe = stepsPerEpoch();
        int epoch = s / spe, within = s % spe;
        int[] perm = permutation(n, opt.seed() * 1_000_003L + epoch);
        List<TrainData.Example> out = new ArrayList<>();
        for (int b = 0; b < opt.batch(); b++) {
            int i = within * opt.batch() + b;
            out.add(data.train().get(perm[i % n]));   // the last batch of an epoch wraps to its start
        }
        return out;
    }

    private static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) { int j = r.nextInt(i + 1); int t = p[i]; p[i] = p[j]; p[j] = t; }
        return p;
    }

    /** Runs one optimizer step. */
    public StepResult trainStep() {
        List<TrainData.Example> batch = batchOf(step);
        double wsum = 0;
        for (TrainData.Example e : batch) for (float w : e.weights()) wsum += w;
        if (wsum == 0) throw new IllegalStateException("step " + step + ": the batch has no predicted tokens");
        float scale = (float) (1 / wsum);
        for (Worker w : workers) w.grads.zeroGrad();
        double[] losses = runParallel(batch, true, scale);
        adapter.zeroGrad();
        for (Worker w : workers) adapter.addGradients(w.grads);
        double norm = AdamW.clipGlobalNorm(adapter.gradients(), opt.maxGradNorm());
        double lr = schedule.at(step);
        adam.step(lr);
        step++;
        long toks = 0;
        for (TrainData.Example e : batch) toks += e.tokens().length - 1;
        tokensSeen += toks;
        return new StepResult(step, losses[0] / losses[1], lr, norm, toks);
    }

    /** Trains up to opt.steps, calling evalHook every evalEvery steps and checkpointing every saveEvery steps and at the end. */
    public void train(Listener listener, Path checkpointDir, java.util.function.IntConsumer evalHook) {
        while (step < opt.steps()) {
            StepResult r = trainStep();
            if (listener != null) listener.onStep(r);
            if (checkpointDir != null && opt.saveEvery() > 0 && step % opt.saveEvery() == 0 && step < opt.steps()) checkpoint().save(checkpointDir);
            if (evalHook != null && opt.evalEvery() > 0 && step % opt.evalEvery() == 0 && step < opt.steps()) evalHook.accept(step);
        }
        if (checkpointDir != null) checkpoint().save(checkpointDir);
    }

    /** Mean loss per predicted token over examples (no gradients). */
    public double evaluate(List<TrainData.Example> examples) {
        if (examples.isEmpty()) return Double.NaN;
        double[] l = runParallel(examples, false, 0);
        return l[0] / l[1];
    }

    /** Σ loss and Σ weight of the examples, split over the workers; with backward, gradients into the workers' twins. */
    private double[] runParallel(List<TrainData.Example> examples, boolean backward, float scale) {
        int nw = Math.min(workers.length, examples.size());
        double[][] part = new double[nw][2];
        List<Future<?>> fs = new ArrayList<>();
        for (int k = 1; k < nw; k++) {
            final int id = k;
            fs.add(pool.submit(() -> runShare(examples, id, nw, backward, scale, part[id])));
        }
        runShare(examples, 0, nw, backward, scale, part[0]);
        for (Future<?> f : fs) {
            try { f.get(); } catch (InterruptedException e) { Thread.currentThread().interrupt(); throw new IllegalStateException(e); }
            catch (ExecutionException e) { throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause()); }
        }
        double s = 0, w = 0;
        for (double[] p : part) { s += p[0]; w += p[1]; }
        return new double[]{s, w};
    }

    private void runShare(List<TrainData.Example> examples, int id, int nw, boolean backward, float scale, double[] out) {
        Worker w = workers[id];
        for (int i = id; i < examples.size(); i += nw) {
            TrainData.Example e = examples.get(i);
            LlamaBackprop.Loss l = model.run(e.tokens(), e.weights(), adapter, backward ? w.grads : null, scale, w.ws);
            out[0] += l.sum();
            out[1] += l.weight();
        }
    }

    /** Identifies the run: a resume refuses a checkpoint made with a different adapter shape or options. */
    public String runKey() {
        LoraSpec sp = adapter.spec();
        String targets = sp.targets().stream().sorted().map(Object::toString).reduce((a, b) -> a + "," + b).orElse("");
        return sp.method() + "|r=" + sp.rank() + "|n=" + sp.nblocks() + "|alpha=" + sp.alpha() + "|rslora=" + sp.rslora() + "|targets=" + targets
                + "|params=" + adapter.parameterCount() + "|steps=" + opt.steps() + "|batch=" + opt.batch() + "|lr=" + opt.lr()
                + "|seed=" + opt.seed() + "|train=" + data.train().size();
    }

    public Checkpoint checkpoint() {
        List<float[]> p = new ArrayList<>();
        for (float[] x : adapter.parameters()) p.add(x.clone());
        List<float[]> m = new ArrayList<>(), v = new ArrayList<>();
        for (float[] x : adam.firstMoments()) m.add(x.clone());
        for (float[] x : adam.secondMoments()) v.add(x.clone());
        return new Checkpoint(step, runKey(), p, m, v);
    }

    public void resume(Checkpoint c) {
        if (!c.runKey().equals(runKey()))
            throw new IllegalArgumentException("the checkpoint was made by a different run:\n  checkpoint: " + c.runKey() + "\n  this run:   " + runKey());
        List<float[]> ps = adapter.parameters();
        for (int i = 0; i < ps.size(); i++) System.arraycopy(c.params().get(i), 0, ps.get(i), 0, ps.get(i).length);
        adam.restore(c.step(), c.m(), c.v());
        step = c.step();
    }

    @Override public void close() { if (pool != null) pool.shutdownNow(); }
}
