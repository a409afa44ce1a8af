package dev.bdserve.cli;

import dev.bdserve.model.hub.DownloadProgress;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.Console;
import java.io.PrintStream;

/** Model downloads on the terminal: the announcement line, then an ASCII progress bar per file (on stderr). */
final class TerminalDownloadProgress implements DownloadProgress {
    private final PrintStream out;
    private final int barWidth;

    TerminalDownloadProgress(PrintStream out, int barWidth) {
        this.out = out;
        this.barWidth = barWidth;
    }

    /** Bars on {@code System.err} when the process has an interactive console, sized by {@code $COLUMNS}; otherwise null (silent). */
    static DownloadProgress ifTerminal() {
        Console console = System.console();
        return console != null && console.isTerminal() ? new TerminalDownloadProgress(System.err, barWidth(System.getenv("COLUMNS"))) : null;
    }

    @Override
    public void announce(String line) {
        out.println(line);
    }

    @Override
    public FileProgress start(String fileName, long bytes) {
        boolean big = bytes >= 10L << 20;
        ProgressBar bar = new ProgressBarBuilder()
                .setTaskName(fileName)
                .setInitialMax(bytes)
                .setUnit(big ? "MiB" : "KiB", big ? 1L << 20 : 1L << 10)
                .setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(200)
                .showSpeed()
                .setConsumer(new ConsoleProgressBarConsumer(out, barWidth))
                .build();
        return new FileProgress() {
            @Override public void advance(long n) { bar.stepBy(n); }
            @Override public void close() { bar.close(); }
        };
    }

    /** The terminal's width less one, within [40, 200]; 80 when {@code COLUMNS} is unset or not a number. */
    static int barWidth(String columns) {
        try {
            return columns == null ? 80 : Math.clamp(Integer.parseInt(columns.strip()) - 1, 40, 200);
        } catch (NumberFormatException e) {
            return 80;
        }
    }
}
