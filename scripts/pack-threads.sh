#!/usr/bin/env bash
# Times `sigma pack -T 1` against `sigma pack -T 2` end to end (a process each, codebook load
# included), alternating the two so that a busy host slows both alike, and checks that the two
# archives are byte-identical.
#
# Usage: scripts/pack-threads.sh [FILE.jsonl] [ROUNDS]
#   FILE defaults to ../shared/corpus/chat-train.jsonl, ROUNDS (pairs of runs) to 10.
# Prints each pair's wall times, then the median of each and their ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
input=${1:-$root/../shared/corpus/chat-train.jsonl}
rounds=${2:-10}
[ -f "$input" ] || { echo "pack-threads: $input not found" >&2; exit 1; }
cargo build --release -q -p sigma-cli --manifest-path "$root/Cargo.toml"
sigma=$root/target/release/sigma
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s%N; }
wall() { # prints the wall-clock seconds of one pack with $1 threads
  local t0 t1
  t0=$(now)
  "$sigma" pack -q -f -T "$1" "$input" -o "$tmp/t$1.sga"
  t1=$(now)
  printf '%d.%09d\n' $(((t1 - t0) / 1000000000)) $(((t1 - t0) % 1000000000))
}
wall 1 >/dev/null # warm the page cache
: >"$tmp/times"
for i in $(seq "$rounds"); do
  a=$(wall 1)
  b=$(wall 2)
  printf '%s %s\n' "$a" "$b" | tee -a "$tmp/times"
done
cmp -s "$tmp/t1.sga" "$tmp/t2.sga" || { echo "pack-threads: -T 1 and -T 2 archives differ" >&2; exit 1; }
python3 - "$tmp/times" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
t1 = statistics.median(r[0] for r in rows)
t2 = statistics.median(r[1] for r in rows)
pairs = sorted(r[0] / r[1] for r in rows)
print(f"median -T 1 {t1:.3f} s, -T 2 {t2:.3f} s: {t1 / t2:.2f}x "
      f"(pairs: min {pairs[0]:.2f}x, median {statistics.median(pairs):.2f}x, max {pairs[-1]:.2f}x); "
      "archives byte-identical")
PY
