package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Finds and loads the tokenizer of a model folder or file. */
public final class Tokenizers {
    private static final Pattern TOK_BIN = Pattern.compile("tok.*\\.bin");

    private Tokenizers() {}

    /**
     * Loads the tokenizer for {@code path}:
     * <ul>
     *   <li>a {@code .json} file: a Hugging Face tokenizer.json;</li>
     *   <li>{@code tokenizer.bin} or {@code tok*.bin}: a llama2.c tokenizer;</li>
     *   <li>a folder, or another file (a checkpoint, whose folder is used): {@code tokenizer.json} if present, else
     *       {@code tokenizer.bin}, else a {@code tok*.bin} sibling — for a llama2.c {@code .bin} checkpoint,
     *       {@code tok<vocab_size>.bin} is preferred, then a tok*.bin holding exactly vocab_size tokens, then the
     *       only tok*.bin.</li>
     * </ul>
     * A llama2.c tokenizer found for a llama2.c checkpoint is read with the checkpoint's vocab_size, as llama2.c does.
     *
     * @throws ModelFormatException naming what was looked for when no tokenizer is found
     */
    public static Tokenizer load(Path path) {
        if (!Files.exists(path))
            throw new ModelFormatException("cannot load a tokenizer: " + path + " does not exist");
        Path dir;
        Path checkpoint = null;
        if (Files.isDirectory(path)) {
            dir = path;
        } else {
            String name = path.getFileName().toString();
            if (name.endsWith(".json")) return HfTokenizer.load(path);
            if (name.endsWith(".gguf")) {
                try (var f = dev.bdserve.model.gguf.GgufFile.open(path)) {
                    return GgufTokenizers.fromMetadata(path.toString(), f.metadata());
                }
            }
            if (name.equals("tokenizer.bin") || TOK_BIN.matcher(name).matches()) return Llama2cTokenizer.load(path);
            checkpoint = path;
            dir = path.toAbsolutePath().getParent();
        }
        Path hf = dir.resolve("tokenizer.json");
        if (Files.isRegularFile(hf)) return HfTokenizer.load(hf);

        int vocab = checkpoint != null && checkpoint.getFileName().toString().endsWith(".bin")
                ? llama2cCheckpointVocab(checkpoint) : -1;
        Path bin = dir.resolve("tokenizer.bin");
        if (Files.isRegularFile(bin)) return Llama2cTokenizer.load(bin, vocab);

        List<Path> toks;
        try (Stream<Path> s = Files.list(dir)) {
            toks = s.filter(p -> Files.isRegularFile(p) && TOK_BIN.matcher(p.getFileName().toString()).matches())
                    .sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir + " while looking for a tokenizer: " + e.getMessage(), e);
        }
        if (vocab > 0) {
            Path exact = dir.resolve("tok" + vocab + ".bin");
            if (Files.isRegularFile(exact)) return Llama2cTokenizer.load(exact, vocab);
            List<Llama2cTokenizer> fitting = new ArrayList<>();
            for (Path p : toks) {
                try {
                    Llama2cTokenizer t = Llama2cTokenizer.load(p);
                    if (t.vocabSize() == vocab) fitting.add(t);
                } catch (ModelFormatException ignored) {
                    // not a usable tokenizer: skip it in the search
                }
            }
            if (fitting.size() == 1) return fitting.getFirst();
        }
        if (toks.size() == 1) return Llama2cTokenizer.load(toks.getFirst(), vocab);
        String what = "looked for " + hf + ", " + bin + (vocab > 0 ? ", " + dir.resolve("tok" + vocab + ".bin") : "")
                + " and " + dir.resolve("tok*.bin");
        if (toks.isEmpty())
            throw new ModelFormatException("no tokenizer found for " + path + ": " + what);
        throw new ModelFormatException("no unique tokenizer for " + path + ": " + what + "; found several: " + toks
                + (vocab > 0 ? " (none named or sized for vocab_size " + vocab + ")" : "") + "; pass the tokenizer file itself");
    }

    /** vocab_size (absolute value) from a llama2.c checkpoint header, or -1 if the header is not plausible. */
    static int llama2cCheckpointVocab(Path checkpoint) {
        try (InputStream in = Files.newInputStream(checkpoint)) {
            byte[] h = in.readNBytes(28);
            if (h.length < 28) return -1;
            ByteBuffer bb = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
            int dim = bb.getInt(0), vocab = Math.abs(bb.getInt(20));
            return dim > 0 && vocab > 0 && vocab < (1 << 24) ? vocab : -1;
        } catch (IOException e) {
            return -1;
        }
    }
}
