#!/usr/bin/env bash
# The parameter-efficiency study (docs/train-study/): LoRA ranks vs BD-LoRA (nblocks 2, 4) at parameter-matched ranks,
# on swap-text (LM, held-out loss) and caps (greedy accuracy), several seeds. Writes results.csv, table.md, plot.png.
# Full grid as in the issue (hours on 2 shared cores):  scripts/train-study.sh --seeds 3 --steps 200
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BDSERVE_MODELS="${BDSERVE_MODELS:-$ROOT/../shared/models}"
cd "$ROOT"
[ -f data/caps.jsonl ] && [ -f data/swap-text.txt ] || scripts/make-synth-data.sh
exec scripts/bdserve-main dev.bdserve.cli.TrainStudyCommand "$@"   # --out defaults to docs/train-study
