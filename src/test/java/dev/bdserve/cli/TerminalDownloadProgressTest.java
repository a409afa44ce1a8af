package dev.bdserve.cli;

import dev.bdserve.model.hub.DownloadProgress;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** The cli's download progress: the announcement, then a bar named after the file, on the stream it was given. */
class TerminalDownloadProgressTest {
    @Test
    void announcesThenDrawsABarPerFile() {
        var buf = new ByteArrayOutputStream();
        var progress = new TerminalDownloadProgress(new PrintStream(buf, true, StandardCharsets.UTF_8), 80);
        progress.announce("bdserve: downloading tiny (3 KiB) from http://h/acme/tiny into /c/tiny");
        try (DownloadProgress.FileProgress bar = progress.start("tok.bin", 3_001)) {
            bar.advance(1_000);
            bar.advance(2_001);
        }
        String shown = buf.toString(StandardCharsets.UTF_8);
        assertTrue(shown.startsWith("bdserve: downloading tiny"), shown);
        assertTrue(shown.contains("tok.bin") && shown.contains("KiB"), shown);
    }

    @Test
    void barWidthFollowsColumns() {
        assertEquals(80, TerminalDownloadProgress.barWidth(null));
        assertEquals(80, TerminalDownloadProgress.barWidth("wide"));
        assertEquals(119, TerminalDownloadProgress.barWidth(" 120 "));
        assertEquals(40, TerminalDownloadProgress.barWidth("10"));
        assertEquals(200, TerminalDownloadProgress.barWidth("500"));
    }
}
