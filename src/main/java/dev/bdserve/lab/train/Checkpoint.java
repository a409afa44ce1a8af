package dev.bdserve.lab.train;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A resumable training state: the step reached, the adapter's parameters and AdamW's moments, plus a
 * description of the run (spec and options) that a resume must match. Binary, big-endian; written to a
 * temporary file and moved into place so that an interrupted save leaves the previous checkpoint intact.
 *
 * @param step     optimizer steps completed
 * @param runKey   a description of the spec, data and options that must match on resume
 * @param params   adapter tensors ({@link TrainableAdapter#parameters()} order)
 * @param m        AdamW first moments
 * @param v        AdamW second moments
 */
public record Checkpoint(int step, String runKey, List<float[]> params, List<float[]> m, List<float[]> v) {
    private static final long MAGIC = 0x4244545241494E31L; // "BDTRAIN1"
    public static final String FILE = "trainer_state.bin";

    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
            Path tmp = dir.resolve(FILE + ".tmp");
            try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16))) {
                out.writeLong(MAGIC);
                out.writeInt(step);
                out.writeUTF(runKey);
                out.writeInt(params.size());
                for (List<float[]> group : List.of(params, m, v))
                    for (float[] t : group) {
                        out.writeInt(t.length);
                        for (float x : t) out.writeFloat(x);
                    }
            }
            Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint to " + dir + ": " + e.getMessage(), e);
        }
    }

    public static boolean exists(Path dir) { return Files.isRegularFile(dir.resolve(FILE)); }

    public static Checkpoint load(Path dir) {
        Path f = dir.resolve(FILE);
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(f), 1 << 16))) {
            if (in.readLong() != MAGIC) throw new IllegalArgumentException(f + ": not a bdserve training checkpoint");
            int step = in.readInt();
            String key = in.readUTF();
            int n = in.readInt();
            List<List<float[]>> groups = new ArrayList<>();
            for (int g = 0; g < 3; g++) {
                List<float[]> ts = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    float[] t = new float[in.readInt()];
                    for (int j = 0; j < t.length; j++) t[j] = in.readFloat();
                    ts.add(t);
                }
                groups.add(ts);
            }
            return new Checkpoint(step, key, groups.get(0), groups.get(1), groups.get(2));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint " + f + ": " + e.getMessage(), e);
        }
    }
}
