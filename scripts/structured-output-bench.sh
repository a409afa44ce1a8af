#!/usr/bin/env bash
# Structured output's cost under load (docs/bench/structured-output.md): one warm server on a synthetic model of
# llama-160m's shape with the Llama-3 vocabulary; 16 streams × 128 tokens, free against 8 of 16 constrained by
# docs/bench/structured-output-schema.json, in alternating rounds. Prints one JSON line per run and the per-round
# ratios constrained / free with their median.
#   scripts/structured-output-bench.sh [ROUNDS (3)] [WORK_DIR (/tmp/bdserve-so-bench)]
# Needs $BDSERVE_LLAMACPP/tokenizers/llama3 (.ci/run makes it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
WORK="${2:-/tmp/bdserve-so-bench}"
LLAMACPP="${BDSERVE_LLAMACPP:-$ROOT/../llamacpp}"
PORT=18530
mkdir -p "$WORK"
cd "$ROOT"
[ -d "$WORK/l160-l3" ] || ./bdserve synth model --shape llama-160m --dtype bf16 --tokenizer "$LLAMACPP/tokenizers/llama3" --out "$WORK/l160-l3" >&2
./bdserve serve --model "$WORK/l160-l3" --served-model-name l160 --port "$PORT" --disable-log-requests > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.5; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "the server did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }

run() {   # run NAME [extra bench serve options...]: the result JSON in $WORK/NAME.json
  local name=$1; shift
  ./bdserve bench serve --base-url "http://127.0.0.1:$PORT" --model l160 --num-prompts 16 --max-concurrency 16 \
      --input-len 64 --output-len 128 --ignore-eos --seed 1 --save-result "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1
}
CONSTRAINED=(--response-format-file docs/bench/structured-output-schema.json --constrained-fraction 0.5)
# warm-up: builds the vocabulary's trie and compiles the schema once, outside the timed runs
./bdserve bench serve --base-url "http://127.0.0.1:$PORT" --model l160 --num-prompts 4 --max-concurrency 4 \
    --input-len 16 --output-len 16 --ignore-eos --seed 2 "${CONSTRAINED[@]}" > "$WORK/warmup.log" 2>&1
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run "r$r-free"; run "r$r-constrained" "${CONSTRAINED[@]}"
  else run "r$r-constrained" "${CONSTRAINED[@]}"; run "r$r-free"; fi
done
python3 - "$WORK" "$ROUNDS" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
ratios = []
for r in range(1, rounds + 1):
    free = json.load(open(f"{work}/r{r}-free.json"))
    con = json.load(open(f"{work}/r{r}-constrained.json"))
    ratio = con["output_throughput"] / free["output_throughput"]
    ratios.append(ratio)
    print(json.dumps({"round": r, "free_output_tok_s": round(free["output_throughput"], 2),
                      "constrained_output_tok_s": round(con["output_throughput"], 2), "constrained_over_free": round(ratio, 3),
                      "constrained_requests": con.get("constrained_requests"), "mask_tokens": con.get("mask_tokens"),
                      "p50_mask_ms": round(con.get("p50_mask_ms", float("nan")), 4), "p99_mask_ms": round(con.get("p99_mask_ms", float("nan")), 4),
                      "failed": free["failed"] + con["failed"]}))
print(json.dumps({"rounds": rounds, "median_constrained_over_free": round(statistics.median(ratios), 3)}))
EOF
