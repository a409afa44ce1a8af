package dev.bdserve.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The server's structured-output mask-time histogram ({@code bdserve:structured_mask_seconds} on {@code /metrics}),
 * summed over adapters, so that {@link ServeBench} can report the mask time per token of its own run (the difference
 * of two scrapes) as quantiles, interpolated linearly within a bucket as Prometheus' {@code histogram_quantile} does.
 *
 * @param bounds     bucket upper bounds, ascending, the last +Inf
 * @param cumulative observations ≤ each bound
 */
record MaskHistogram(double[] bounds, long[] cumulative) {
    private static final Pattern BUCKET = Pattern.compile("^bdserve:structured_mask_seconds_bucket\\{[^}]*le=\"([^\"]+)\"[^}]*}\\s+(\\S+)");

    /** The histogram on the server's /metrics; null when it has none (not bdserve, or no metrics route). */
    static MaskHistogram scrape(HttpClient client, ServeBench.Config c) {
        try {
            HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(c.baseUrl().replaceAll("/+$", "") + "/metrics")).timeout(Duration.ofSeconds(30)).GET();
            if (c.apiKey() != null && !c.apiKey().isEmpty()) rb.header("Authorization", "Bearer " + c.apiKey());
            HttpResponse<String> r = client.send(rb.build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) return null;
            return parse(r.body());
        } catch (java.io.IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** From Prometheus text; an empty histogram (no buckets) when the metric has no samples yet. */
    static MaskHistogram parse(String text) {
        TreeMap<Double, Long> sum = new TreeMap<>();
        for (String line : text.split("\n")) {
            Matcher m = BUCKET.matcher(line);
            if (!m.find()) continue;
            double le = m.group(1).equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(m.group(1));
            sum.merge(le, (long) Double.parseDouble(m.group(2)), Long::sum);
        }
        double[] b = new double[sum.size()];
        long[] n = new long[sum.size()];
        int i = 0;
        for (var e : sum.entrySet()) { b[i] = e.getKey(); n[i++] = e.getValue(); }
        return new MaskHistogram(b, n);
    }

    /** This histogram less an earlier scrape of the same server (an empty earlier one is zero). */
    MaskHistogram minus(MaskHistogram earlier) {
        long[] n = cumulative.clone();
        if (earlier.bounds.length == bounds.length && Arrays.equals(earlier.bounds, bounds))
            for (int i = 0; i < n.length; i++) n[i] -= earlier.cumulative[i];
        else if (earlier.bounds.length != 0) throw new IllegalStateException("the server's mask histogram buckets changed during the run");
        return new MaskHistogram(bounds, n);
    }

    long count() { return cumulative.length == 0 ? 0 : cumulative[cumulative.length - 1]; }

    /** The q-quantile in seconds, linear within its bucket (the highest finite bound when it falls in +Inf); NaN if empty. */
    double quantile(double q) {
        long total = count();
        if (total == 0) return Double.NaN;
        double rank = q * total;
        for (int i = 0; i < bounds.length; i++) {
            if (cumulative[i] >= rank) {
                if (Double.isInfinite(bounds[i])) return i > 0 ? bounds[i - 1] : Double.NaN;
                double lo = i == 0 ? 0 : bounds[i - 1];
                long below = i == 0 ? 0 : cumulative[i - 1];
                long in = cumulative[i] - below;
                return in == 0 ? bounds[i] : lo + (bounds[i] - lo) * (rank - below) / in;
            }
        }
        return bounds[bounds.length - 1];
    }
}
