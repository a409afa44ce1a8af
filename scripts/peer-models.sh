#!/usr/bin/env bash
# Writes the GGUF files `./bdserve bench peer` runs on (docs/bench/peer.md): a synthetic model of a real shape, one set of
# weights (from --seed), as
#   SHAPE-q8_0.gguf    bdserve's own GGUF writer (Q8_0 matrices)
#   SHAPE-bf16.gguf    bdserve's own GGUF writer (BF16), the source of the next one
#   SHAPE-q4_k_m.gguf  llama.cpp's llama_model_quantize (Q4_K_M, which bdserve cannot write yet), called in
#                      node-llama-cpp's prebuilt libllama through the test helper llamacpp_quantize.py (python3 ctypes)
# Usage: scripts/peer-models.sh [OUT_DIR] [SHAPE] [SEED]   (defaults: ../peer-models beside the repository, llama-3.2-1b, 1)
# llama.cpp is looked up in $BDSERVE_LLAMACPP (default ../llamacpp beside the repository); .ci/run installs it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/../peer-models}"
SHAPE="${2:-llama-3.2-1b}"
SEED="${3:-1}"
LLAMACPP="$(realpath -m "${BDSERVE_LLAMACPP:-$ROOT/../llamacpp}")"
LIB="$LLAMACPP/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so"
if [ ! -f "$LIB" ]; then
  echo "peer-models.sh: llama.cpp's prebuilt library is missing ($LIB). Set BDSERVE_LLAMACPP to its install; .ci/run installs it," \
       "or by hand: mkdir -p $LLAMACPP && cd $LLAMACPP && npm install --omit=optional node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1" >&2
  exit 1
fi
mkdir -p "$OUT"
for t in q8_0 bf16; do
  "$ROOT/bdserve" synth model --shape "$SHAPE" --format gguf --dtype "$t" --seed "$SEED" --out "$OUT/$SHAPE-$t.gguf"
done
# 15 = LLAMA_FTYPE_MOSTLY_Q4_K_M of llama.h; 2 quantizing threads
python3 "$ROOT/src/test/resources/dev/bdserve/model/gguf/llamacpp_quantize.py" "$LIB" "$OUT/$SHAPE-bf16.gguf" "$OUT/$SHAPE-q4_k_m.gguf" 15 2
echo "wrote $OUT/$SHAPE-q4_k_m.gguf (llama.cpp Q4_K_M)" >&2
