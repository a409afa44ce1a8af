package dev.bdserve.model.hub;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;

/**
 * A model that bdserve knows by name and can download from the Hugging Face hub. Locally its files live side by
 * side in one folder named {@link #name()}, each under its {@link HubFile#fileName()}; the first file is the model
 * file that {@link ModelResolver#resolve} returns.
 *
 * @param name  the name given to {@code --model}, e.g. {@code stories260K}
 * @param repo  the hub repository id, e.g. {@code karpathy/tinyllamas}
 * @param files the files to fetch, model file first
 */
public record KnownModel(String name, String repo, List<HubFile> files) {
    /** Karpathy's 260K-parameter TinyStories Llama (llama2.c format) with its 512-token tokenizer: the default. */
    public static final KnownModel STORIES_260K = new KnownModel("stories260K", "karpathy/tinyllamas", List.of(
            new HubFile("stories260K/stories260K.bin", 1_056_540,
                    "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"),
            new HubFile("stories260K/tok512.bin", 6_227,
                    "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312")));

    /** The models bdserve knows by name. */
    public static final List<KnownModel> BUILTIN = List.of(STORIES_260K);

    public KnownModel {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(repo, "repo");
        files = List.copyOf(files);
        if (name.isBlank() || name.contains("/") || name.contains("\\") || name.startsWith("."))
            throw new IllegalArgumentException("known model name must be a plain folder name: '" + name + "'");
        if (!ModelResolver.looksLikeRepoId(repo))
            throw new IllegalArgumentException("hub repo of " + name + " must look like 'owner/name': '" + repo + "'");
        if (files.isEmpty()) throw new IllegalArgumentException("known model " + name + " has no files");
        var seen = new HashSet<String>();
        for (HubFile f : files)
            if (!seen.add(f.fileName()))
                throw new IllegalArgumentException("known model " + name + " has two files named " + f.fileName());
    }

    /** The model file (the first of {@link #files()}). */
    public HubFile modelFile() {
        return files.getFirst();
    }
}
