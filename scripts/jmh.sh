#!/usr/bin/env bash
# JMH benchmarks of the hot kernels (src/test/java/dev/bdserve/jmh): MatMulBench (GEMV/GEMM by dtype),
# LoraBench (grouped LoRA shrink/expand), AttentionBench (a decode step of a tiny model, attention-dominated).
# Usage: scripts/jmh.sh [JMH options and benchmark regex], e.g.
#   scripts/jmh.sh MatMulBench -p dtype=BF16 -rf json -rff target/jmh.json
#   scripts/jmh.sh -f 1 -wi 2 -i 3 -w 1s -r 1s          # shorter
# Each benchmark forks a JVM with --add-modules jdk.incubator.vector (@Fork jvmArgsAppend).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/find-jdk.sh"
cd "$ROOT"
mvn -B -q test-compile dependency:build-classpath -Dmdep.outputFile=target/jmh.classpath -Dmdep.includeScope=test >/dev/null
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp "target/test-classes:target/classes:$(cat target/jmh.classpath)" org.openjdk.jmh.Main "$@" 2> >(grep -v 'WARNING: Using incubator modules' >&2)
