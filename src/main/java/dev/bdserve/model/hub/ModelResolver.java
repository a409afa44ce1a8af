package dev.bdserve.model.hub;

import java.io.IOException;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Turns the {@code --model} argument into a local model file or folder.
 *
 * <ol>
 *   <li>An existing path (file or folder) is returned as is.</li>
 *   <li>A known model name (see {@link KnownModel}) is looked up in {@code $BDSERVE_MODELS/<name>/}, then in the
 *       cache {@code <cache>/<name>/}, and otherwise downloaded from the hub into the cache (size and SHA-256
 *       checked, moved into place atomically). A cached file is checked against its SHA-256 once and then marked
 *       ({@link CacheVerification}). The model file is returned (for stories260K,
 *       {@code .../stories260K/stories260K.bin}, with {@code tok512.bin} beside it).</li>
 *   <li>A hub repo id {@code owner/name} is returned if the cache holds {@code <cache>/owner--name/}; arbitrary
 *       repos are never downloaded.</li>
 *   <li>Any other path-looking argument (with a {@code /}, or ending in {@code .bin}/{@code .safetensors}) fails
 *       with "no such model file or folder"; any other name is looked for as a folder in {@code $BDSERVE_MODELS}
 *       and the cache, and otherwise fails listing the known names.</li>
 * </ol>
 *
 * <p>The cache is {@code $BDSERVE_CACHE}, else {@code $XDG_CACHE_HOME/bdserve}, else {@code ~/.cache/bdserve}.
 * The hub is {@code $HF_ENDPOINT} (default {@value #DEFAULT_ENDPOINT}); {@code HF_HUB_OFFLINE=1} forbids downloads;
 * {@code HF_TOKEN}, if set, is sent to the hub host (not to the hosts it redirects to). Every failure is a
 * {@link ModelResolutionException} with a one-line message.
 */
public final class ModelResolver {
    /** The model used when {@code --model} is not given. */
    public static final String DEFAULT_MODEL = "stories260K";
    /** The hub used when {@code HF_ENDPOINT} is not set. */
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final Set<String> TRUE = Set.of("1", "true", "yes", "on");

    private final Map<String, String> env;
    private final List<KnownModel> registry;
    private final Path cacheDir;
    private final Path modelsDir;
    private final String endpoint;
    private final DownloadProgress progress;
    private final HubDownloader downloader;

    /** A resolver for the built-in {@link KnownModel#BUILTIN} models. */
    public ModelResolver(Map<String, String> env, HttpClient http, DownloadProgress progress) {
        this(env, http, progress, KnownModel.BUILTIN);
    }

    /**
     * @param env      environment variables (BDSERVE_MODELS, BDSERVE_CACHE, XDG_CACHE_HOME, HOME, HF_ENDPOINT,
     *                 HF_HUB_OFFLINE, HF_TOKEN)
     * @param http     client for hub downloads; its redirect policy does not matter, redirects are followed here
     * @param progress told about downloads as they happen (the cli draws a progress bar), or null for silent downloads
     * @param registry the models known by name
     */
    public ModelResolver(Map<String, String> env, HttpClient http, DownloadProgress progress, List<KnownModel> registry) {
        this(env, http, progress, registry, HubDownloader.STALL_TIMEOUT);
    }

    /** With another stall timeout for download bodies (tests use a short one). */
    ModelResolver(Map<String, String> env, HttpClient http, DownloadProgress progress, List<KnownModel> registry, Duration stallTimeout) {
        this.env = Map.copyOf(env);
        this.registry = List.copyOf(registry);
        this.progress = progress;
        var names = new java.util.HashSet<String>();
        for (KnownModel m : this.registry)
            if (!names.add(m.name())) throw new IllegalArgumentException("two known models named " + m.name());
        this.cacheDir = cacheDir(this.env);
        this.modelsDir = nonBlank(this.env.get("BDSERVE_MODELS")) ? Path.of(this.env.get("BDSERVE_MODELS")) : null;
        String ep = nonBlank(this.env.get("HF_ENDPOINT")) ? this.env.get("HF_ENDPOINT").strip() : DEFAULT_ENDPOINT;
        this.endpoint = ep.endsWith("/") ? ep.substring(0, ep.length() - 1) : ep;
        String token = nonBlank(this.env.get("HF_TOKEN")) ? this.env.get("HF_TOKEN").strip() : null;
        this.downloader = new HubDownloader(Objects.requireNonNull(http, "http"), endpoint, token, progress, stallTimeout);
    }

    /** A resolver on {@link System#getenv()} with a fresh {@link HttpClient}, reporting downloads to {@code progress} (or null). */
    public static ModelResolver fromEnvironment(DownloadProgress progress) {
        HttpClient http = HttpClient.newBuilder()
                .connectTimeout(Duration.ofSeconds(15))
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
        return new ModelResolver(System.getenv(), http, progress);
    }

    /** The cache folder: {@code $BDSERVE_CACHE}, else {@code $XDG_CACHE_HOME/bdserve}, else {@code ~/.cache/bdserve}. */
    public Path cacheDir() {
        return cacheDir;
    }

    /** {@code $BDSERVE_MODELS}, if set. */
    public Optional<Path> modelsDir() {
        return Optional.ofNullable(modelsDir);
    }

    /** The models known by name. */
    public List<KnownModel> knownModels() {
        return registry;
    }

    /** The known model with exactly this name. */
    public Optional<KnownModel> knownModel(String name) {
        return registry.stream().filter(m -> m.name().equals(name)).findFirst();
    }

    /**
     * Resolves a {@code --model} argument (null or blank means {@link #DEFAULT_MODEL}) to a model file or folder,
     * downloading a known model into the cache if needed.
     *
     * @throws ModelResolutionException with a one-line message saying what is wrong and what to do
     */
    public Path resolve(String nameOrPath) {
        String arg = nameOrPath == null || nameOrPath.isBlank() ? DEFAULT_MODEL : nameOrPath.strip();
        Path asPath = toPath(arg);
        if (asPath != null && Files.exists(asPath)) return asPath;
        Optional<KnownModel> known = knownModel(arg);
        if (known.isPresent()) return resolveKnown(known.get());
        if (looksLikeRepoId(arg) && !hasModelSuffix(arg)) return resolveCachedRepo(arg);
        if (looksLikePath(arg)) throw new ModelResolutionException("no such model file or folder: " + arg);
        if (asPath != null) {
            if (modelsDir != null && Files.isDirectory(modelsDir.resolve(arg))) return modelsDir.resolve(arg);
            if (Files.isDirectory(cacheDir.resolve(arg))) return cacheDir.resolve(arg);
        }
        String suggestion = registry.stream().filter(m -> m.name().equalsIgnoreCase(arg)).findFirst()
                .map(m -> " (did you mean " + m.name() + "?)").orElse("");
        throw new ModelResolutionException("unknown model '" + arg + "'" + suggestion
                + ": it is no file or folder, no folder in " + searched() + ", and not a known model name (known: "
                + knownNames() + "); pass a model file or folder, or one of the known names");
    }

    private Path resolveKnown(KnownModel m) {
        if (modelsDir != null) {
            Path dir = modelsDir.resolve(m.name());
            if (Files.isDirectory(dir)) {
                List<HubFile> missing = m.files().stream()
                        .filter(f -> !Files.isRegularFile(dir.resolve(f.fileName()))).toList();
                if (missing.isEmpty()) return dir.resolve(m.modelFile().fileName());
                throw new ModelResolutionException("$BDSERVE_MODELS/" + m.name() + " (" + dir + ") lacks "
                        + fileNames(missing) + ": copy " + repoPaths(missing) + " of hub repo " + m.repo()
                        + " into it, or remove the folder to use the cache " + cacheDir.resolve(m.name()));
            }
        }
        Path dir = cacheDir.resolve(m.name());
        List<HubFile> missing = new ArrayList<>();
        for (HubFile f : m.files()) {
            Path p = dir.resolve(f.fileName());
            if (!Files.isRegularFile(p)) {
                missing.add(f);
                continue;
            }
            long size = size(p);
            if (size != f.size())
                throw new ModelResolutionException("cached " + p + " has " + size + " bytes, expected " + f.size()
                        + " (" + f.path() + " of hub repo " + m.repo() + "): delete it to download it again");
            CacheVerification.verify(p, f, m.repo());
        }
        if (missing.isEmpty()) return dir.resolve(m.modelFile().fileName());

        String offline = env.get("HF_HUB_OFFLINE");
        if (offline != null && TRUE.contains(offline.strip().toLowerCase(Locale.ROOT)))
            throw cannotDownload(m, missing, "HF_HUB_OFFLINE=" + offline.strip(), null);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new ModelResolutionException("cannot create the cache folder " + dir + ": "
                    + HubDownloader.describe(e) + "; set BDSERVE_CACHE to a writable folder", e);
        }
        if (progress != null)
            progress.announce("bdserve: downloading " + m.name() + " (" + humanSize(missing) + ") from "
                    + endpoint + "/" + m.repo() + " into " + dir);
        for (int i = 0; i < missing.size(); i++) {
            HubFile f = missing.get(i);
            try {
                downloader.download(m.repo(), f, dir.resolve(f.fileName()));
                CacheVerification.mark(dir.resolve(f.fileName()), f);   // the download checked its SHA-256
            } catch (HubDownloader.UnreachableException e) {
                throw cannotDownload(m, missing.subList(i, missing.size()), e.getMessage(), e);
            } catch (IOException e) {
                throw new ModelResolutionException(e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ModelResolutionException("download of " + f.path() + " for " + m.name()
                        + " was interrupted", e);
            }
        }
        return dir.resolve(m.modelFile().fileName());
    }

    private ModelResolutionException cannotDownload(KnownModel m, List<HubFile> missing, String reason, Throwable cause) {
        String into = cacheDir.resolve(m.name()) + "/";
        String alternative = modelsDir == null
                ? " or set BDSERVE_MODELS to a folder holding " + m.name() + "/"
                : " or into " + modelsDir.resolve(m.name()) + "/";
        return new ModelResolutionException(m.name() + " is not in " + searched()
                + " and cannot be downloaded (" + reason + "): copy " + repoPaths(missing) + " of hub repo "
                + m.repo() + " (" + endpoint + "/" + m.repo() + ") into " + into + alternative, cause);
    }

    private Path resolveCachedRepo(String repoId) {
        Path dir = cacheDir.resolve(repoId.replace("/", "--"));
        if (Files.isDirectory(dir)) return dir;
        throw new ModelResolutionException("no such model file or folder: " + repoId + "; as a hub repo id it is not in"
                + " the cache either (" + dir + "/), and bdserve downloads only its known models (" + knownNames()
                + "): download the repo's files into that folder yourself, or pass a local path");
    }

    // ---- helpers ----

    /** {@code owner/name}: exactly one slash, hub-legal characters. */
    static boolean looksLikeRepoId(String s) {
        return s != null && REPO_ID.matcher(s).matches() && !s.contains("..") && !s.startsWith(".");
    }

    private static boolean looksLikePath(String s) {
        return s.indexOf('/') >= 0 || s.indexOf(java.io.File.separatorChar) >= 0 || hasModelSuffix(s);
    }

    private static boolean hasModelSuffix(String s) {
        String l = s.toLowerCase(Locale.ROOT);
        return l.endsWith(".bin") || l.endsWith(".safetensors");
    }

    private static Path toPath(String s) {
        try {
            return Path.of(s);
        } catch (InvalidPathException e) {
            return null;
        }
    }

    private String searched() {
        return (modelsDir == null ? "$BDSERVE_MODELS (unset)" : "$BDSERVE_MODELS (" + modelsDir + ")") + " or " + cacheDir;
    }

    private String knownNames() {
        return registry.isEmpty() ? "none" : registry.stream().map(KnownModel::name).collect(Collectors.joining(", "));
    }

    private static String fileNames(List<HubFile> files) {
        return joinAnd(files.stream().map(HubFile::fileName).toList());
    }

    private static String repoPaths(List<HubFile> files) {
        return joinAnd(files.stream().map(HubFile::path).toList());
    }

    private static String joinAnd(List<String> items) {
        if (items.size() <= 1) return String.join("", items);
        return String.join(", ", items.subList(0, items.size() - 1)) + " and " + items.getLast();
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new ModelResolutionException("cannot read " + p + ": " + HubDownloader.describe(e), e);
        }
    }

    private static String humanSize(List<HubFile> files) {
        long bytes = files.stream().mapToLong(HubFile::size).sum();
        if (bytes < 1024) return bytes + " B";
        if (bytes < 1L << 20) return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
        if (bytes < 1L << 30) return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
        return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }

    static Path cacheDir(Map<String, String> env) {
        if (nonBlank(env.get("BDSERVE_CACHE"))) return Path.of(env.get("BDSERVE_CACHE"));
        if (nonBlank(env.get("XDG_CACHE_HOME"))) return Path.of(env.get("XDG_CACHE_HOME"), "bdserve");
        String home = nonBlank(env.get("HOME")) ? env.get("HOME") : System.getProperty("user.home");
        return Path.of(home, ".cache", "bdserve");
    }

    private static boolean nonBlank(String s) {
        return s != null && !s.isBlank();
    }
}
