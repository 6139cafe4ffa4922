#!/usr/bin/env bash
# The quality figures in the README: held-out genres, the hand-written set and the needle test,
# for one hypernetwork folder (default: the packaged one), and questions over several documents at
# once. About 30 minutes on 2 cores.
#   bash scripts/evaluate_default.sh [HYPERNET_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
HN=${1:-}
OUT=${2:-results/eval}
ARGS=()
if [ -n "$HN" ]; then ARGS=(--hypernet "$HN"); fi
mkdir -p "$OUT"
# the genres the training configs keep out of training
.venv/bin/vllm-d2l eval --synthetic 16 --seed 20000 --genres recipe,ship_log,job_posting,museum_label \
    "${ARGS[@]}" --no-progress \
    --out "$OUT/heldout_genres.json" --plot "$OUT/heldout_genres.png"
# the kinds of realistic documents the training stream keeps out
.venv/bin/vllm-d2l eval --realistic 16 --seed 20000 "${ARGS[@]}" --no-progress \
    --out "$OUT/heldout_realistic.json" --plot "$OUT/heldout_realistic.png"
# hand-written documents no generator made: the primary figure
.venv/bin/vllm-d2l eval "${ARGS[@]}" --no-progress \
    --out "$OUT/handwritten.json" --plot "$OUT/handwritten.png"
# a second hand-written set, of other kinds of document (e-mail, FAQ, timetable, chat, changelog, ...)
.venv/bin/vllm-d2l eval --data handwritten-b "${ARGS[@]}" --no-progress \
    --out "$OUT/handwritten_b.json" --plot "$OUT/handwritten_b.png"
.venv/bin/vllm-d2l eval --needle "${ARGS[@]}" --multiples 1,2,4 --depths 0.1,0.5,0.9 --trials 3 \
    --conditions none,context,adapter --no-progress --out "$OUT/needle.json" --plot "$OUT/needle.png"
# one question, K hand-written documents: their composite as served, the plain sum of their adapters, all in the prompt
.venv/bin/vllm-d2l eval --multi 1,2,4 "${ARGS[@]}" --no-progress \
    --out "$OUT/multi_handwritten.json" --plot "$OUT/multi_handwritten.png"
