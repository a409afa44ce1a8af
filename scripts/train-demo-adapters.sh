#!/usr/bin/env bash
# Trains the demo adapters committed under adapters/ on stories260K (one command; ~10-20 minutes on 2 cores):
#   caps-bdlora4   BD-LoRA, nblocks 4: continues a story in ALL CAPS
#   closing-lora   ordinary LoRA:      ends the continuation with "The end, and that is all for today."
# Data: deterministic synthetic sets sampled from stories260K itself (scripts/make-synth-data.sh → data/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BDSERVE_MODELS="${BDSERVE_MODELS:-$ROOT/../shared/models}"
cd "$ROOT"
scripts/make-synth-data.sh
COMMON=(--model stories260K --steps 200 --batch 16 --seq-len 192 --warmup 20 --lr 5e-3 --seed 0 --eval-fraction 0.05 --no-checkpoint --task-prompts 64)
./bdserve train --data data/caps.jsonl --method bdlora --nblocks 4 --rank 4 --task caps "${COMMON[@]}" --out adapters/caps-bdlora4
./bdserve train --data data/closing.jsonl --method lora --rank 2 --task closing "${COMMON[@]}" --out adapters/closing-lora
for a in caps-bdlora4 closing-lora; do
  echo "== $a"; ./bdserve generate --prompt "Once upon a time, there was a little girl named Lily." --max-tokens 60 --adapter adapters/$a
done
