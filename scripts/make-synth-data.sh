#!/usr/bin/env bash
# Generates the synthetic task data sets (deterministic: fixed seeds) into data/ (not committed; ~1 MB each).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BDSERVE_MODELS="${BDSERVE_MODELS:-$ROOT/../shared/models}"
mkdir -p "$ROOT/data"
for t in caps closing; do
  [ -f "$ROOT/data/$t.jsonl" ] || "$ROOT/scripts/bdserve-main" dev.bdserve.cli.SynthDataCommand --task $t --tokens 200000 --seed 1 --out "$ROOT/data/$t.jsonl"
done
[ -f "$ROOT/data/swap-text.txt" ] || "$ROOT/scripts/bdserve-main" dev.bdserve.cli.SynthDataCommand --task swap-text --tokens 200000 --seed 2 --out "$ROOT/data/swap-text.txt"
