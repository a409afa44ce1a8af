package dev.bdserve.model.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;

/**
 * Downloads single hub files: follows redirects itself (whatever the client's redirect policy), streams into a
 * temporary file beside the target while hashing, checks size and SHA-256, then moves the file into place atomically.
 * A body that delivers no byte for the stall timeout is abandoned (the HTTP client's own timeout covers only the
 * headers), and temporary files of the same file left by a killed download are removed first.
 */
final class HubDownloader {
    static final int MAX_REDIRECTS = 10;
    static final Duration RESPONSE_TIMEOUT = Duration.ofSeconds(60);
    /** How long a body may deliver nothing before the download is abandoned. */
    static final Duration STALL_TIMEOUT = Duration.ofSeconds(60);
    private static final String USER_AGENT = "bdserve/0.1.0";

    /** The network could not be reached at all (connection refused, unknown host, timeout...). */
    static final class UnreachableException extends IOException {
        UnreachableException(String message, Throwable cause) { super(message, cause); }
    }

    private final HttpClient http;
    private final String endpoint;
    private final String token;
    private final DownloadProgress progress;
    private final Duration stallTimeout;

    /**
     * @param endpoint     hub base URL without trailing slash
     * @param token        HF token sent to the endpoint's host only, or null
     * @param progress     told each file's bytes as they arrive, or null for none
     * @param stallTimeout how long a body may deliver nothing before the download is abandoned; also the age beyond
     *                     which another download's temporary file counts as left behind (a live one writes sooner)
     */
    HubDownloader(HttpClient http, String endpoint, String token, DownloadProgress progress, Duration stallTimeout) {
        this.http = Objects.requireNonNull(http, "http");
        this.endpoint = Objects.requireNonNull(endpoint, "endpoint");
        this.token = token;
        this.progress = progress;
        this.stallTimeout = Objects.requireNonNull(stallTimeout, "stallTimeout");
    }

    /** {@code {endpoint}/{repo}/resolve/main/{path}}. */
    static URI fileUri(String endpoint, String repo, String path) {
        String base = endpoint.endsWith("/") ? endpoint.substring(0, endpoint.length() - 1) : endpoint;
        try {
            URI b = new URI(base);
            String p = (b.getRawPath() == null ? "" : b.getPath()) + "/" + repo + "/resolve/main/" + path;
            return new URI(b.getScheme(), b.getRawAuthority() == null ? null : b.getAuthority(), p, null, null);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("HF_ENDPOINT is not a valid URL: " + endpoint, e);
        }
    }

    /**
     * Downloads {@code file} of {@code repo} to {@code target}. On any failure no file is left behind and the
     * message is one line naming the file; an {@link UnreachableException} means the hub could not be contacted.
     */
    void download(String repo, HubFile file, Path target) throws IOException, InterruptedException {
        URI uri = fileUri(endpoint, repo, file.path());
        Path dir = target.toAbsolutePath().getParent();
        removeStaleParts(dir, file.fileName());
        Path tmp = Files.createTempFile(dir, "." + file.fileName() + ".", ".part");
        boolean done = false;
        try {
            HttpResponse<InputStream> response = get(uri, file);
            String sha;
            try (InputStream in = response.body(); OutputStream out = Files.newOutputStream(tmp);
                 StallWatch watch = new StallWatch(in, stallTimeout)) {
                sha = copy(in, out, file, response.uri(), tmp, watch);
            }
            if (!sha.equals(file.sha256()))
                throw new IOException("SHA-256 mismatch for " + file.path() + " from " + response.uri() + ": expected "
                        + file.sha256() + ", got " + sha + "; the download was discarded");
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) Files.deleteIfExists(tmp);
        }
    }

    /** GET with redirects followed; returns the 200 response whose body is still to be read. */
    private HttpResponse<InputStream> get(URI first, HubFile file) throws IOException, InterruptedException {
        URI uri = first;
        for (int hop = 0; ; hop++) {
            var request = HttpRequest.newBuilder(uri).GET().timeout(RESPONSE_TIMEOUT).header("User-Agent", USER_AGENT);
            if (token != null && Objects.equals(uri.getHost(), first.getHost())
                    && Objects.equals(uri.getScheme(), first.getScheme()))
                request.header("Authorization", "Bearer " + token);
            HttpResponse<InputStream> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                if (isUnreachable(e))
                    throw new UnreachableException("cannot reach " + origin(uri) + ": " + describe(e), e);
                throw new IOException("GET " + uri + " failed: " + describe(e), e);
            }
            int status = response.statusCode();
            if (status == 200) return response;
            response.body().close();
            if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
                var location = response.headers().firstValue("Location");
                if (location.isEmpty())
                    throw new IOException("cannot download " + file.path() + ": HTTP " + status
                            + " redirect without a Location header from " + uri);
                if (hop >= MAX_REDIRECTS)
                    throw new IOException("cannot download " + file.path() + ": more than " + MAX_REDIRECTS
                            + " redirects, last from " + uri);
                try {
                    uri = response.uri().resolve(new URI(location.get()));
                } catch (URISyntaxException e) {
                    throw new IOException("cannot download " + file.path() + ": HTTP " + status
                            + " redirect to an invalid Location '" + location.get() + "' from " + uri, e);
                }
                continue;
            }
            String hint = switch (status) {
                case 401, 403 -> " (the repository may be gated or private: set HF_TOKEN to an access token)";
                case 404 -> " (no such file on " + origin(first) + "; check HF_ENDPOINT)";
                default -> "";
            };
            throw new IOException("cannot download " + file.path() + ": HTTP " + status + " from " + uri + hint);
        }
    }

    /**
     * Deletes {@code .NAME.*.part} files in {@code dir} not written to for longer than the stall timeout: a download
     * that was killed left them, since a live one writes (or gives up) sooner.
     */
    private void removeStaleParts(Path dir, String fileName) throws IOException {
        String prefix = "." + fileName + ".";
        long cutoff = System.currentTimeMillis() - stallTimeout.toMillis();
        try (var parts = Files.newDirectoryStream(dir, p -> {
            String n = p.getFileName().toString();
            return n.startsWith(prefix) && n.endsWith(".part");
        })) {
            for (Path p : parts) {
                try {
                    if (Files.getLastModifiedTime(p).toMillis() < cutoff) Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // gone meanwhile, or not ours to delete: it does not stop this download
                }
            }
        }
    }

    /**
     * Closes a response body that delivers nothing for the stall timeout, which makes the blocked read fail; the
     * copy loop reports it as a stall.
     */
    private static final class StallWatch implements AutoCloseable {
        private final Thread thread;
        private volatile long lastProgress = System.nanoTime();
        private volatile boolean stalled, closed;

        StallWatch(InputStream body, Duration timeout) {
            long limit = timeout.toNanos();
            thread = Thread.ofVirtual().name("bdserve-download-watch").start(() -> {
                while (!closed) {
                    long idle = System.nanoTime() - lastProgress;
                    if (idle >= limit) {
                        stalled = true;
                        try { body.close(); } catch (IOException ignored) { /* the read fails either way */ }
                        return;
                    }
                    try {
                        Thread.sleep(Math.max(1, (limit - idle) / 1_000_000));
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }

        void progressed() { lastProgress = System.nanoTime(); }

        boolean stalled() { return stalled; }

        @Override
        public void close() {
            closed = true;
            thread.interrupt();
        }
    }

    private String copy(InputStream in, OutputStream out, HubFile file, URI from, Path tmp, StallWatch watch) throws IOException {
        MessageDigest sha = sha256();
        byte[] buf = new byte[1 << 16];
        long total = 0;
        try (DownloadProgress.FileProgress bar = progress == null ? null : progress.start(file.fileName(), file.size())) {
            while (true) {
                int n;
                try {
                    n = in.read(buf);
                } catch (IOException e) {
                    if (watch.stalled()) throw stalled(file, from, total);
                    throw new IOException("download of " + file.path() + " from " + from + " broke off after " + total
                            + " of " + file.size() + " bytes: " + describe(e), e);
                }
                if (watch.stalled()) throw stalled(file, from, total);
                if (n < 0) break;
                watch.progressed();
                total += n;
                if (total > file.size())
                    throw new IOException("size mismatch for " + file.path() + " from " + from
                            + ": more than the expected " + file.size() + " bytes; the download was discarded");
                try {
                    out.write(buf, 0, n);
                } catch (IOException e) {
                    throw new IOException("cannot write " + tmp + " while downloading " + file.path() + ": "
                            + describe(e), e);
                }
                sha.update(buf, 0, n);
                if (bar != null) bar.advance(n);
            }
        }
        if (total != file.size())
            throw new IOException("size mismatch for " + file.path() + " from " + from + ": got " + total
                    + " bytes, expected " + file.size() + "; the download was discarded");
        return HexFormat.of().formatHex(sha.digest());
    }

    private IOException stalled(HubFile file, URI from, long total) {
        return new IOException("download of " + file.path() + " from " + from + " stalled: no data for " + stallTimeout.toMillis() / 1000.0
                + " s after " + total + " of " + file.size() + " bytes; the download was discarded");
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256", e);
        }
    }

    private static boolean isUnreachable(IOException e) {
        if (e instanceof ConnectException || e instanceof HttpConnectTimeoutException || e instanceof HttpTimeoutException
                || e instanceof UnknownHostException) return true;
        for (Throwable c = e.getCause(); c != null; c = c.getCause())
            if (c instanceof ConnectException || c instanceof UnresolvedAddressException || c instanceof UnknownHostException)
                return true;
        return false;
    }

    private static String origin(URI uri) {
        return uri.getScheme() + "://" + uri.getRawAuthority();
    }

    /** A short reason: the first non-blank message in the cause chain, or a readable class name. */
    static String describe(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof UnresolvedAddressException) return "unknown host";
            if (c.getMessage() != null && !c.getMessage().isBlank()) return c.getMessage();
        }
        return switch (e) {
            case ConnectException _ -> "connection refused";
            case HttpTimeoutException _ -> "timed out";
            default -> e.getClass().getSimpleName();
        };
    }
}
