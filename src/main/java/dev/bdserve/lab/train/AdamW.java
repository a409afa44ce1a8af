package dev.bdserve.lab.train;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"; torch.optim.AdamW): Adam moments
 * with bias correction, and weight decay applied to the weights directly (w ← w − lr·λ·w), not through
 * the gradient. Holds the moment estimates of its parameter tensors.
 */
public final class AdamW {
    /** Hyper-parameters, validated. */
    public record Config(double beta1, double beta2, double eps, double weightDecay) {
        public Config {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("betas must be in [0, 1)");
            if (!(eps > 0)) throw new IllegalArgumentException("eps must be positive");
            if (!(weightDecay >= 0)) throw new IllegalArgumentException("weight decay must be ≥ 0, got " + weightDecay);
        }

        public static Config defaults(double weightDecay) { return new Config(0.9, 0.999, 1e-8, weightDecay); }
    }

    private final Config cfg;
    private final List<float[]> params, grads, m, v;
    private long t;  // steps taken

    public AdamW(Config cfg, List<float[]> params, List<float[]> grads) {
        if (params.size() != grads.size()) throw new IllegalArgumentException("one gradient per parameter tensor");
        this.cfg = cfg;
        this.params = params;
        this.grads = grads;
        this.m = new ArrayList<>();
        this.v = new ArrayList<>();
        for (float[] p : params) { m.add(new float[p.length]); v.add(new float[p.length]); }
    }

    /** One update with learning rate lr. */
    public void step(double lr) {
        t++;
        double bc1 = 1 - Math.pow(cfg.beta1(), t), bc2 = 1 - Math.pow(cfg.beta2(), t);
        float b1 = (float) cfg.beta1(), b2 = (float) cfg.beta2();
        float stepSize = (float) (lr / bc1), decay = (float) (1 - lr * cfg.weightDecay());
        float sqrtBc2 = (float) Math.sqrt(bc2), eps = (float) cfg.eps();
        for (int k = 0; k < params.size(); k++) {
            float[] p = params.get(k), g = grads.get(k), mk = m.get(k), vk = v.get(k);
            for (int i = 0; i < p.length; i++) {
                mk[i] = b1 * mk[i] + (1 - b1) * g[i];
                vk[i] = b2 * vk[i] + (1 - b2) * g[i] * g[i];
                p[i] = p[i] * decay - stepSize * mk[i] / ((float) Math.sqrt(vk[i]) / sqrtBc2 + eps);
            }
        }
    }

    public long steps() { return t; }
    public List<float[]> firstMoments() { return m; }
    public List<float[]> secondMoments() { return v; }

    /** Restores the state saved by a checkpoint. */
    public void restore(long steps, List<float[]> m1, List<float[]> m2) {
        if (m1.size() != m.size() || m2.size() != v.size()) throw new IllegalArgumentException("optimizer state has a different number of tensors");
        for (int k = 0; k < m.size(); k++) {
            if (m1.get(k).length != m.get(k).length || m2.get(k).length != v.get(k).length)
                throw new IllegalArgumentException("optimizer state tensor " + k + " has a different size");
            System.arraycopy(m1.get(k), 0, m.get(k), 0, m.get(k).length);
            System.arraycopy(m2.get(k), 0, v.get(k), 0, v.get(k).length);
        }
        this.t = steps;
    }

    /** Scales all gradients so that their global L2 norm is at most maxNorm (torch clip_grad_norm_); returns the norm before. */
    public static double clipGlobalNorm(List<float[]> grads, double maxNorm) {
        double ss = 0;
        for (float[] g : grads) for (float x : g) ss += (double) x * x;
        double norm = Math.sqrt(ss);
        if (maxNorm > 0 && norm > maxNorm) {
            float s = (float) (maxNorm / (norm + 1e-6));
            for (float[] g : grads) for (int i = 0; i < g.length; i++) g[i] *= s;
        }
        return norm;
    }
}
