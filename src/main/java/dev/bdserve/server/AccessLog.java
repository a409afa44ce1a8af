package dev.bdserve.server;

import java.io.PrintStream;
import java.time.Instant;
import java.util.Locale;

/** One line per /v1/ request: its id, route and status, and for generation requests what they produced. */
final class AccessLog {
    private final PrintStream log;   // null: nowhere

    AccessLog(PrintStream log) { this.log = log; }

    void write(String rid, String method, String path, int status, Completions.Outcome o, double seconds, String gone) {
        if (log == null) return;
        StringBuilder sb = new StringBuilder(200);
        sb.append("access ts=").append(Instant.now()).append(" id=").append(rid).append(" method=").append(method)
                .append(" path=").append(path).append(" status=").append(status);
        if (o != null) {
            sb.append(" model=").append(o.model).append(" adapter=").append(o.adapter == null ? "-" : o.adapter)
                    .append(" stream=").append(o.stream).append(" choices=").append(o.choices)
                    .append(" prompt_tokens=").append(o.promptTokens).append(" completion_tokens=").append(o.completionTokens)
                    .append(" ttft_ms=").append(Double.isNaN(o.ttftSeconds) ? "-" : String.format(Locale.ROOT, "%.1f", o.ttftSeconds * 1e3))
                    .append(" finish=").append(o.finish.isEmpty() ? "-" : o.finish);
        }
        sb.append(" total_ms=").append(String.format(Locale.ROOT, "%.1f", seconds * 1e3));
        if (gone != null) sb.append(" gone=\"").append(gone.replace('"', '\'')).append('"');
        log.println(sb);
    }
}
