package dev.bdserve.model.hub;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;

/**
 * A cached hub file is trusted only once its SHA-256 was checked: on download, or the first time it is found in the
 * cache. The check is recorded in a marker beside it ({@code .NAME.verified}: the hash, the size and the modification
 * time it was checked at), so the file is hashed once, not at every start; a file changed since (other size or time)
 * is hashed again.
 */
final class CacheVerification {
    private CacheVerification() {}

    static Path marker(Path file) { return file.resolveSibling("." + file.getFileName() + ".verified"); }

    /** Throws {@link ModelResolutionException} naming the file when its content is not the hub file's. */
    static void verify(Path file, HubFile expected, String repo) {
        try {
            if (stamp(file, expected).equals(readMarker(file))) return;
            String sha;
            MessageDigest md = HubDownloader.sha256();
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            }
            sha = HexFormat.of().formatHex(md.digest());
            if (!sha.equals(expected.sha256()))
                throw new ModelResolutionException("cached " + file + " has SHA-256 " + sha + ", expected " + expected.sha256() + " ("
                        + expected.path() + " of hub repo " + repo + "): delete it to download it again");
            mark(file, expected);
        } catch (IOException e) {
            throw new ModelResolutionException("cannot check the cached " + file + ": " + HubDownloader.describe(e), e);
        }
    }

    /** Records that the file (just checked) holds the hub file's content. A marker that cannot be written is no failure. */
    static void mark(Path file, HubFile expected) {
        try {
            Files.writeString(marker(file), stamp(file, expected), StandardCharsets.UTF_8);
        } catch (IOException ignored) {
            // a read-only cache: the file is hashed again next time
        }
    }

    private static String stamp(Path file, HubFile expected) throws IOException {
        return expected.sha256() + " " + Files.size(file) + " " + Files.getLastModifiedTime(file).toMillis() + "\n";
    }

    private static String readMarker(Path file) {
        try {
            return Files.readString(marker(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }
}
