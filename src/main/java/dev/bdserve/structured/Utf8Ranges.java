package dev.bdserve.structured;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Code point ranges as UTF-8 byte-range sequences: a range is cut where the encoded length changes and where the
 * continuation bytes would not all span 0x80..0xBF, so each piece is a product of per-byte ranges (the method of
 * RE2 and Rust's utf8-ranges). Each sequence is an {@code int[]} of {@link Grammar} terminals.
 */
final class Utf8Ranges {
    private Utf8Ranges() {}

    static List<int[]> of(int[][] ranges) {
        List<int[]> out = new ArrayList<>();
        for (int[] r : Gbnf.withoutSurrogates(ranges)) {
            int[][] lens = {{0, 0x7F}, {0x80, 0x7FF}, {0x800, 0xFFFF}, {0x10000, Gbnf.MAX_CP}};
            for (int[] l : lens) {
                int lo = Math.max(r[0], l[0]), hi = Math.min(r[1], l[1]);
                if (lo <= hi) split(lo, hi, out);
            }
        }
        return out;
    }

    private static void split(int lo, int hi, List<int[]> out) {
        int n = encode(lo).length;
        for (int k = 1; k < n; k++) {
            int m = (1 << (6 * k)) - 1;
            if ((lo & ~m) != (hi & ~m)) {
                if ((lo & m) != 0) {
                    split(lo, lo | m, out);
                    split((lo | m) + 1, hi, out);
                    return;
                }
                if ((hi & m) != m) {
                    split(lo, (hi & ~m) - 1, out);
                    split(hi & ~m, hi, out);
                    return;
                }
            }
        }
        byte[] a = encode(lo), b = encode(hi);
        int[] seq = new int[n];
        for (int k = 0; k < n; k++) seq[k] = (a[k] & 0xFF) | (b[k] & 0xFF) << 8;
        out.add(seq);
    }

    private static byte[] encode(int cp) {
        return new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
    }
}
