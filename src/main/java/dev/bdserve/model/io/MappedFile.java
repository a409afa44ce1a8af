package dev.bdserve.model.io;

import dev.bdserve.model.ModelFormatException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Read-only memory mapping of a model file, with one message for a missing, unreadable or too short file. */
public final class MappedFile {
    private MappedFile() {}

    /**
     * Maps the whole file into {@code arena} (which the caller closes).
     *
     * @param minBytes the smallest length the format allows
     * @param what     what those bytes hold, for the message (e.g. "the 28-byte llama2.c header")
     */
    public static MemorySegment map(Path path, Arena arena, long minBytes, String what) {
        String f = path.toString();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < minBytes) throw new ModelFormatException(f + ": file is " + size + " bytes, too short for " + what);
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(f + ": file not found", e);
        } catch (IOException e) {
            throw new ModelFormatException(f + ": cannot read: " + e.getMessage(), e);
        }
    }
}
