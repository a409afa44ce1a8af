#!/usr/bin/env bash
# The paper's mechanism, measured (issue 4): TP 2 over Open MPI on TCP loopback, one bf16 adapter at the
# parameter-matched rank, batch 1/4/8, simulated per-collective latency 0/10/50/100 µs added on top of TCP.
# Each point runs base-only, replicated, slora and bdlora in one process group (`bench decode --compare-sharding`)
# with 512-token prompts at batch 1 (prefill; 64 otherwise) and 32 decode steps, the strategies in turn
# for 3 rounds (fastest decode of each kept); one JSON object per line in OUT/results.jsonl.
# Usage: scripts/mechanism.sh MODEL_DIR [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: scripts/mechanism.sh MODEL_DIR [OUT_DIR]}
OUT=${2:-docs/bench/mechanism}
mkdir -p "$OUT"
export BDSERVE_MPIRUN_ARGS="--mca btl self,tcp --mca btl_tcp_if_include lo"
for lat in 0 10 50 100; do
  for b in 1 4 8; do
    echo "latency ${lat} us, batch ${b}" >&2
    prompt=64; [ "$b" = 1 ] && prompt=512     # 512-token prefill at batch 1; shorter prompts keep the larger batches quick
    ./bdserve bench decode --model "$MODEL" --tp 2 --tp-transport mpi --lora-sharding auto --compare-sharding --repeats 3 \
      --batch "$b" --prompt-tokens "$prompt" --gen-tokens 32 --tp-sim-latency-us "$lat" --no-probes \
      | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))' >> "$OUT/results.jsonl"
  done
done
