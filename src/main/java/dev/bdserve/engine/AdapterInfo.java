package dev.bdserve.engine;

import java.nio.file.Path;

/**
 * An adapter the engine knows.
 *
 * @param name        the name requests use (the OpenAI "model" field)
 * @param path        its folder
 * @param resident    loaded in memory on every rank now
 * @param pinned      never evicted
 * @param running     requests using it now (running or waiting)
 * @param maxRank     its largest module rank (when resident or once loaded)
 * @param blockDiagonal a BD-LoRA adapter
 * @param sharding    how it is sharded over the TP group (when resident)
 */
public record AdapterInfo(String name, Path path, boolean resident, boolean pinned, int running, int maxRank,
                          boolean blockDiagonal, String sharding) {}
