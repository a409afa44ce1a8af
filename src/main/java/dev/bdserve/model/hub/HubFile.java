package dev.bdserve.model.hub;

import java.util.HexFormat;
import java.util.Locale;
import java.util.Objects;

/**
 * One file of a Hugging Face hub repository, with its expected size and SHA-256 (64 hex digits, stored lower case).
 *
 * @param path   path inside the repository, e.g. {@code stories260K/tok512.bin}
 * @param size   exact size in bytes
 * @param sha256 SHA-256 of the content, hex
 */
public record HubFile(String path, long size, String sha256) {
    public HubFile {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(sha256, "sha256");
        if (path.isBlank() || path.startsWith("/") || path.endsWith("/") || path.contains(".."))
            throw new IllegalArgumentException("hub file path must be a relative file path inside the repo: '" + path + "'");
        if (size < 0) throw new IllegalArgumentException("negative size " + size + " for hub file " + path);
        sha256 = sha256.toLowerCase(Locale.ROOT);
        if (sha256.length() != 64 || !sha256.chars().allMatch(HexFormat::isHexDigit))
            throw new IllegalArgumentException("SHA-256 of hub file " + path + " must be 64 hex digits: '" + sha256 + "'");
    }

    /** The last path segment: the name this file gets in a local model folder (e.g. {@code tok512.bin}). */
    public String fileName() {
        return path.substring(path.lastIndexOf('/') + 1);
    }
}
