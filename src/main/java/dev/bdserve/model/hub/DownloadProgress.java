package dev.bdserve.model.hub;

/**
 * What a {@link ModelResolver} reports while it downloads a model: one line before the files, then each file's bytes
 * as they arrive. The resolver draws nothing itself, so the serving path carries no console library; the cli supplies
 * a terminal progress bar.
 */
public interface DownloadProgress {
    /** One line before the downloads start: which model, how big, from where, into which folder. */
    void announce(String line);

    /** Starts tracking one file of {@code bytes} bytes; the result is closed when the file is complete or has failed. */
    FileProgress start(String fileName, long bytes);

    /** One file's download under way. */
    interface FileProgress extends AutoCloseable {
        /** {@code bytes} more bytes have arrived. */
        void advance(long bytes);

        @Override
        void close();
    }
}
