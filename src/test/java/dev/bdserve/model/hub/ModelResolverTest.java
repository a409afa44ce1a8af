package dev.bdserve.model.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Resolution and download against a local HTTP server on 127.0.0.1; never touches the real hub. */
class ModelResolverTest {
    private static final String REPO = "acme/tinyrepo";
    private static final String MODEL_URL = "/acme/tinyrepo/resolve/main/tiny/tiny.bin";
    private static final String TOK_URL = "/acme/tinyrepo/resolve/main/tiny/tok.bin";

    @FunctionalInterface interface Route { void handle(HttpExchange ex) throws IOException; }

    @TempDir Path tmp;
    private HttpServer server;
    private HttpClient http;
    private final List<String> requests = Collections.synchronizedList(new ArrayList<>());
    private final Map<String, Route> routes = new ConcurrentHashMap<>();
    private final Map<String, String> authHeaders = new ConcurrentHashMap<>();
    private byte[] model;
    private byte[] tok;
    private KnownModel tiny;
    private Path cache;

    @BeforeEach
    void start() throws IOException {
        Random rnd = new Random(42);
        model = new byte[70_000];
        tok = new byte[3_001];
        rnd.nextBytes(model);
        rnd.nextBytes(tok);
        tiny = new KnownModel("tiny", REPO, List.of(
                new HubFile("tiny/tiny.bin", model.length, sha(model)),
                new HubFile("tiny/tok.bin", tok.length, sha(tok))));
        cache = tmp.resolve("cache");
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", ex -> {
            try (ex) {
                String path = ex.getRequestURI().getPath();
                requests.add(path);
                String auth = ex.getRequestHeaders().getFirst("Authorization");
                if (auth != null) authHeaders.put(path, auth);
                Route r = routes.get(path);
                if (r == null) send(ex, 404, "Entry not found".getBytes(StandardCharsets.UTF_8));
                else r.handle(ex);
            }
        });
        server.start();
        http = HttpClient.newHttpClient();
    }

    @AfterEach
    void stop() {
        server.stop(0);
        http.close();
    }

    // ---- helpers ----

    private String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private static void send(HttpExchange ex, int status, byte[] body) throws IOException {
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) ex.getResponseBody().write(body);
    }

    private void serve(String path, byte[] body) {
        routes.put(path, ex -> send(ex, 200, body));
    }

    private void serveBoth(String prefix) {
        serve(prefix + MODEL_URL, model);
        serve(prefix + TOK_URL, tok);
    }

    private void redirect(String from, int status, String location) {
        routes.put(from, ex -> {
            ex.getResponseHeaders().set("Location", location);
            send(ex, status, new byte[0]);
        });
    }

    private Map<String, String> env(String... kv) {
        var env = new HashMap<String, String>();
        env.put("HOME", tmp.resolve("home").toString());
        env.put("BDSERVE_CACHE", cache.toString());
        env.put("HF_ENDPOINT", endpoint());
        for (int i = 0; i < kv.length; i += 2) {
            if (kv[i + 1] == null) env.remove(kv[i]);
            else env.put(kv[i], kv[i + 1]);
        }
        return env;
    }

    /** Records the announcement, then "file got of size" as each file's tracker closes. */
    private static DownloadProgress recording(List<String> shown) {
        return new DownloadProgress() {
            @Override public void announce(String line) { shown.add(line); }

            @Override public FileProgress start(String fileName, long bytes) {
                long[] got = {0};
                return new FileProgress() {
                    @Override public void advance(long n) { got[0] += n; }
                    @Override public void close() { shown.add(fileName + " " + got[0] + " of " + bytes); }
                };
            }
        };
    }

    private ModelResolver resolver(Map<String, String> env) {
        return new ModelResolver(env, http, null, List.of(tiny));
    }

    private static String sha(byte[] b) {
        return HexFormat.of().formatHex(HubDownloader.sha256().digest(b));
    }

    private ModelResolutionException fails(ModelResolver r, String arg) {
        var e = assertThrows(ModelResolutionException.class, () -> r.resolve(arg));
        assertFalse(e.getMessage().contains("\n"), () -> "message must be one line: " + e.getMessage());
        return e;
    }

    /** All regular files under the cache (temp files included). */
    private List<Path> cacheFiles() throws IOException {
        if (!Files.exists(cache)) return List.of();
        try (Stream<Path> s = Files.walk(cache)) {
            return s.filter(Files::isRegularFile).toList();
        }
    }

    private static void write(Path p, byte[] content) throws IOException {
        Files.createDirectories(p.getParent());
        Files.write(p, content);
    }

    // ---- downloads ----

    @Test
    void downloadsVerifiesAndReusesTheCache() throws IOException {
        serveBoth("");
        List<String> shown = Collections.synchronizedList(new ArrayList<>());
        var r = new ModelResolver(env(), http, recording(shown), List.of(tiny));

        Path p = r.resolve("tiny");
        assertEquals(cache.resolve("tiny").resolve("tiny.bin"), p);
        assertArrayEquals(model, Files.readAllBytes(p));
        assertArrayEquals(tok, Files.readAllBytes(p.resolveSibling("tok.bin")));
        assertEquals(List.of(MODEL_URL, TOK_URL), List.copyOf(requests));
        assertEquals(List.of(".tiny.bin.verified", ".tok.bin.verified", "tiny.bin", "tok.bin"),
                cacheFiles().stream().map(f -> f.getFileName().toString()).sorted().toList(), "no temp files left, both marked verified");
        assertTrue(shown.getFirst().startsWith("bdserve: downloading tiny"), shown.toString());
        assertEquals(List.of("tiny.bin " + model.length + " of " + model.length, "tok.bin " + tok.length + " of " + tok.length),
                shown.subList(1, shown.size()), "every byte reported, each file closed");

        assertEquals(p, r.resolve("tiny"));
        assertEquals(p, resolver(env()).resolve("tiny"), "a new resolver finds the cache too");
        assertEquals(2, requests.size(), "cache hits make no HTTP request");
    }

    @Test
    void downloadsOnlyTheFilesMissingFromTheCache() throws IOException {
        write(cache.resolve("tiny/tiny.bin"), model);
        serveBoth("");
        assertEquals(cache.resolve("tiny/tiny.bin"), resolver(env()).resolve("tiny"));
        assertEquals(List.of(TOK_URL), List.copyOf(requests));
    }

    @Test
    void hfEndpointIsHonouredIncludingAPathPrefix() {
        serveBoth("/mirror");
        Path p = resolver(env("HF_ENDPOINT", endpoint() + "/mirror/")).resolve("tiny");
        assertTrue(Files.isRegularFile(p));
        assertEquals(List.of("/mirror" + MODEL_URL, "/mirror" + TOK_URL), List.copyOf(requests));
    }

    @Test
    void urlsFollowTheHubLayout() {
        assertEquals("https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/tok512.bin",
                HubDownloader.fileUri(ModelResolver.DEFAULT_ENDPOINT, "karpathy/tinyllamas", "stories260K/tok512.bin")
                        .toString());
        assertEquals("http://h:8/m/a/b/resolve/main/x.bin", HubDownloader.fileUri("http://h:8/m/", "a/b", "x.bin").toString());
    }

    @Test
    void redirectsAreFollowedRelativeAndAbsolute() throws IOException {
        redirect(MODEL_URL, 302, "/cdn/one");
        redirect("/cdn/one", 307, endpoint() + "/cdn/two");
        serve("/cdn/two", model);
        redirect(TOK_URL, 301, "../../../../../cdn/tok");
        serve("/cdn/tok", tok);
        Path p = resolver(env("HF_TOKEN", "hf_secret")).resolve("tiny");
        assertArrayEquals(model, Files.readAllBytes(p));
        assertArrayEquals(tok, Files.readAllBytes(p.resolveSibling("tok.bin")));
        assertEquals(List.of(MODEL_URL, "/cdn/one", "/cdn/two", TOK_URL, "/cdn/tok"), List.copyOf(requests));
        assertEquals("Bearer hf_secret", authHeaders.get(MODEL_URL));
    }

    @Test
    void redirectLoopsAreCutOff() throws IOException {
        redirect(MODEL_URL, 302, MODEL_URL);
        var e = fails(resolver(env()), "tiny");
        assertTrue(e.getMessage().startsWith("cannot download tiny/tiny.bin: more than 10 redirects"), e.getMessage());
        assertEquals(List.of(), cacheFiles());
    }

    // ---- failures ----

    @ParameterizedTest
    @ValueSource(strings = {"1", "true", "TRUE", "yes"})
    void offlineFailsWithOneLineSayingWhatToDo(String value) {
        serveBoth("");
        var e = fails(resolver(env("HF_HUB_OFFLINE", value)), "tiny");
        assertEquals("tiny is not in $BDSERVE_MODELS (unset) or " + cache + " and cannot be downloaded (HF_HUB_OFFLINE="
                + value + "): copy tiny/tiny.bin and tiny/tok.bin of hub repo acme/tinyrepo (" + endpoint()
                + "/acme/tinyrepo) into " + cache.resolve("tiny") + "/ or set BDSERVE_MODELS to a folder holding tiny/",
                e.getMessage());
        assertEquals(List.of(), requests);
    }

    @Test
    void offlineDefaultModelNamesTheTinyllamasFiles() {
        var r = new ModelResolver(env("HF_HUB_OFFLINE", "1", "HF_ENDPOINT", null), http, null);
        var e = assertThrows(ModelResolutionException.class, () -> r.resolve(null));
        assertTrue(e.getMessage().startsWith("stories260K is not in $BDSERVE_MODELS (unset) or " + cache), e.getMessage());
        assertTrue(e.getMessage().contains("(HF_HUB_OFFLINE=1): copy stories260K/stories260K.bin and stories260K/tok512.bin"
                + " of hub repo karpathy/tinyllamas (https://huggingface.co/karpathy/tinyllamas) into "
                + cache.resolve("stories260K") + "/"), e.getMessage());
    }

    @Test
    void hashMismatchIsRejectedAndLeavesNoFile() throws IOException {
        byte[] bad = model.clone();
        bad[1234] ^= 1;
        serve(MODEL_URL, bad);
        serve(TOK_URL, tok);
        var e = fails(resolver(env()), "tiny");
        assertEquals("SHA-256 mismatch for tiny/tiny.bin from " + endpoint() + MODEL_URL + ": expected " + sha(model)
                + ", got " + sha(bad) + "; the download was discarded", e.getMessage());
        assertEquals(List.of(), cacheFiles());
    }

    @Test
    void shortDownloadIsASizeMismatch() throws IOException {
        serve(MODEL_URL, Arrays.copyOf(model, 1000));
        var e = fails(resolver(env()), "tiny");
        assertEquals("size mismatch for tiny/tiny.bin from " + endpoint() + MODEL_URL + ": got 1000 bytes, expected "
                + model.length + "; the download was discarded", e.getMessage());
        assertEquals(List.of(), cacheFiles());
    }

    @Test
    void longDownloadIsASizeMismatch() throws IOException {
        serve(MODEL_URL, Arrays.copyOf(model, model.length + 10));
        var e = fails(resolver(env()), "tiny");
        assertTrue(e.getMessage().startsWith("size mismatch for tiny/tiny.bin from " + endpoint() + MODEL_URL
                + ": more than the expected " + model.length + " bytes"), e.getMessage());
        assertEquals(List.of(), cacheFiles());
    }

    @Test
    void http404NamesFileAndUrl() throws IOException {
        var e = fails(resolver(env()), "tiny");
        assertTrue(e.getMessage().startsWith("cannot download tiny/tiny.bin: HTTP 404 from " + endpoint() + MODEL_URL),
                e.getMessage());
        assertTrue(e.getMessage().contains("check HF_ENDPOINT"), e.getMessage());
        assertEquals(List.of(), cacheFiles());
    }

    @Test
    void http401SuggestsAToken() {
        routes.put(MODEL_URL, ex -> send(ex, 401, new byte[0]));
        var e = fails(resolver(env()), "tiny");
        assertTrue(e.getMessage().contains("HTTP 401") && e.getMessage().contains("set HF_TOKEN"), e.getMessage());
    }

    @Test
    void unreachableServerSaysWhatToDo() throws IOException {
        int port;
        try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        String closed = "http://127.0.0.1:" + port;
        var e = fails(resolver(env("HF_ENDPOINT", closed)), "tiny");
        assertTrue(e.getMessage().startsWith("tiny is not in $BDSERVE_MODELS (unset) or " + cache
                + " and cannot be downloaded (cannot reach " + closed + ": "), e.getMessage());
        assertTrue(e.getMessage().contains("): copy tiny/tiny.bin and tiny/tok.bin of hub repo acme/tinyrepo"),
                e.getMessage());
        assertEquals(List.of(), cacheFiles());
    }

    // ---- local lookup ----

    @Test
    void bdserveModelsWinsOverTheCache() throws IOException {
        Path models = tmp.resolve("models");
        write(models.resolve("tiny/tiny.bin"), model);
        write(models.resolve("tiny/tok.bin"), tok);
        write(cache.resolve("tiny/tiny.bin"), model);
        write(cache.resolve("tiny/tok.bin"), tok);
        assertEquals(models.resolve("tiny/tiny.bin"), resolver(env("BDSERVE_MODELS", models.toString())).resolve("tiny"));
        assertEquals(cache.resolve("tiny/tiny.bin"), resolver(env()).resolve("tiny"));
        assertEquals(List.of(), requests);
    }

    @Test
    void incompleteBdserveModelsFolderIsNamed() throws IOException {
        Path models = tmp.resolve("models");
        write(models.resolve("tiny/tiny.bin"), model);
        var e = fails(resolver(env("BDSERVE_MODELS", models.toString())), "tiny");
        assertTrue(e.getMessage().startsWith("$BDSERVE_MODELS/tiny (" + models.resolve("tiny") + ") lacks tok.bin: copy"
                + " tiny/tok.bin of hub repo acme/tinyrepo into it"), e.getMessage());
        assertEquals(List.of(), requests);
    }

    @Test
    void cachedFileOfWrongSizeIsNamed() throws IOException {
        write(cache.resolve("tiny/tiny.bin"), model);
        write(cache.resolve("tiny/tok.bin"), new byte[5]);
        var e = fails(resolver(env()), "tiny");
        assertEquals("cached " + cache.resolve("tiny/tok.bin") + " has 5 bytes, expected " + tok.length
                + " (tiny/tok.bin of hub repo acme/tinyrepo): delete it to download it again", e.getMessage());
    }

    @Test
    void existingPathsAreReturnedAsIs() throws IOException {
        Path file = tmp.resolve("weights.safetensors");
        write(file, new byte[1]);
        Path dir = Files.createDirectories(tmp.resolve("tiny"));
        var r = resolver(env());
        assertEquals(file, r.resolve(file.toString()));
        assertEquals(dir, r.resolve(dir.toString()), "a folder named like a known model is still a path");
        assertEquals(List.of(), requests);
    }

    @Test
    void missingPathsFailPrecisely() {
        var r = resolver(env());
        for (String arg : List.of(tmp.resolve("nope.bin").toString(), "nope.safetensors", "nope.BIN",
                tmp.resolve("no/such/dir").toString(), "./nope"))
            assertEquals("no such model file or folder: " + arg, fails(r, arg).getMessage());
        assertEquals(List.of(), requests);
    }

    @Test
    void unknownNameListsTheKnownNames() {
        var r = resolver(env());
        var e = fails(r, "llama9");
        assertEquals("unknown model 'llama9': it is no file or folder, no folder in $BDSERVE_MODELS (unset) or " + cache
                + ", and not a known model name (known: tiny); pass a model file or folder, or one of the known names",
                e.getMessage());
        assertTrue(fails(r, "TINY").getMessage().startsWith("unknown model 'TINY' (did you mean tiny?)"));
        assertEquals(List.of(), requests);
    }

    @Test
    void unknownNameFoundAsAFolderInModelsOrCache() throws IOException {
        Path models = tmp.resolve("models");
        Path inModels = Files.createDirectories(models.resolve("mine"));
        Path inCache = Files.createDirectories(cache.resolve("other"));
        var r = resolver(env("BDSERVE_MODELS", models.toString()));
        assertEquals(inModels, r.resolve("mine"));
        assertEquals(inCache, r.resolve("other"));
    }

    @Test
    void repoIdsAreServedFromTheCacheOnly() throws IOException {
        Path dir = Files.createDirectories(cache.resolve("meta-llama--Llama-3.2-1B"));
        var r = resolver(env());
        assertEquals(dir, r.resolve("meta-llama/Llama-3.2-1B"));
        var e = fails(r, "org/absent");
        assertEquals("no such model file or folder: org/absent; as a hub repo id it is not in the cache either ("
                + cache.resolve("org--absent") + "/), and bdserve downloads only its known models (tiny): download the"
                + " repo's files into that folder yourself, or pass a local path", e.getMessage());
        assertEquals(List.of(), requests);
    }

    @Test
    void cacheFolderComesFromTheEnvironment() {
        assertEquals(Path.of("/c"), ModelResolver.cacheDir(Map.of("BDSERVE_CACHE", "/c", "XDG_CACHE_HOME", "/x", "HOME", "/h")));
        assertEquals(Path.of("/x/bdserve"), ModelResolver.cacheDir(Map.of("XDG_CACHE_HOME", "/x", "HOME", "/h")));
        assertEquals(Path.of("/h/.cache/bdserve"), ModelResolver.cacheDir(Map.of("HOME", "/h")));
    }

    @Test
    void builtinRegistryHasTheDefaultModel() {
        var r = new ModelResolver(Map.of("BDSERVE_CACHE", cache.toString()), http, null);
        KnownModel m = r.knownModel(ModelResolver.DEFAULT_MODEL).orElseThrow();
        assertEquals("karpathy/tinyllamas", m.repo());
        assertEquals(List.of("stories260K.bin", "tok512.bin"), m.files().stream().map(HubFile::fileName).toList());
        assertEquals(1_056_540, m.modelFile().size());
        assertEquals(6_227, m.files().get(1).size());
    }

    @Test
    void registryEntriesAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> new HubFile("a.bin", 1, "xyz"));
        assertThrows(IllegalArgumentException.class, () -> new HubFile("../a.bin", 1, "0".repeat(64)));
        assertThrows(IllegalArgumentException.class, () -> new KnownModel("a/b", "o/r", List.of(new HubFile("a", 1, "0".repeat(64)))));
        assertThrows(IllegalArgumentException.class, () -> new KnownModel("a", "repo", List.of(new HubFile("a", 1, "0".repeat(64)))));
        assertThrows(IllegalArgumentException.class, () -> new KnownModel("a", "o/r", List.of()));
    }

    // ---- issue 29: cached files hashed once, stalled bodies, stale temp files

    @Test
    void aCachedFileIsHashedOnceThenTrustedByItsMarker() throws IOException {
        write(cache.resolve("tiny/tiny.bin"), model);
        write(cache.resolve("tiny/tok.bin"), tok);
        assertEquals(cache.resolve("tiny/tiny.bin"), resolver(env()).resolve("tiny"));
        Path marker = cache.resolve("tiny/.tiny.bin.verified");
        assertTrue(Files.readString(marker).startsWith(sha(model) + " " + model.length + " "), Files.readString(marker));
        assertEquals(List.of(), requests, "a correct cache needs no download");

        // same size, other content: caught by the hash, with or without a marker of the old content
        byte[] bad = model.clone();
        bad[7] ^= 1;
        Path file = cache.resolve("tiny/tiny.bin");
        java.nio.file.attribute.FileTime checkedAt = Files.getLastModifiedTime(file);
        write(file, bad);
        // hashed once: with the size and time the marker holds, the file is trusted and not read again (so this
        // change behind the marker's back goes unseen)
        Files.setLastModifiedTime(file, checkedAt);
        assertEquals(file, resolver(env()).resolve("tiny"));
        assertEquals(List.of(), requests);
        // a rewrite within the file system's clock tick keeps the time: the marker trusts (size, time), so move it on
        Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(checkedAt.toMillis() + 2_000));
        var e = fails(resolver(env()), "tiny");
        assertEquals("cached " + cache.resolve("tiny/tiny.bin") + " has SHA-256 " + sha(bad) + ", expected " + sha(model)
                + " (tiny/tiny.bin of hub repo acme/tinyrepo): delete it to download it again", e.getMessage());
    }

    @Test
    void aStalledBodyTimesOutAndLeavesNoFile() throws IOException {
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        routes.put(MODEL_URL, ex -> {
            ex.sendResponseHeaders(200, model.length);
            ex.getResponseBody().write(model, 0, 1000);
            ex.getResponseBody().flush();
            try {
                release.await(60, java.util.concurrent.TimeUnit.SECONDS);   // then stops answering
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        serve(TOK_URL, tok);
        try {
            var r = new ModelResolver(env(), http, null, List.of(tiny), java.time.Duration.ofMillis(500));
            var e = fails(r, "tiny");
            assertEquals("download of tiny/tiny.bin from " + endpoint() + MODEL_URL + " stalled: no data for 0.5 s after 1000 of "
                    + model.length + " bytes; the download was discarded", e.getMessage());
            assertEquals(List.of(), cacheFiles());
        } finally {
            release.countDown();
        }
    }

    @Test
    void staleTempFilesOfAKilledDownloadAreRemoved() throws IOException {
        Path stale = cache.resolve("tiny/.tiny.bin.12345.part"), fresh = cache.resolve("tiny/.tiny.bin.999.part");
        write(stale, new byte[10]);
        write(fresh, new byte[10]);
        Files.setLastModifiedTime(stale, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 3_600_000));
        serveBoth("");
        var r = new ModelResolver(env(), http, null, List.of(tiny), java.time.Duration.ofSeconds(60));
        assertEquals(cache.resolve("tiny/tiny.bin"), r.resolve("tiny"));
        assertFalse(Files.exists(stale), "a part file untouched for longer than the stall timeout is removed");
        assertTrue(Files.exists(fresh), "a part file another download may still be writing stays");
    }
}
