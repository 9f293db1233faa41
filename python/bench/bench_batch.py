#!/usr/bin/env python3
"""compress_batch against the Rust library, and how it scales with threads.

Measures, on the same records (the `text` field of every line of chat-dev.jsonl, or generated
chat-like records if the corpus is missing):

1. compress_batch(threads=1) against the Rust library coding each record on its own on one
   thread (`sigma-bench --only sigma-default`, the same `Encoder::encode` calls): ratio and
   speed. With --rust-json FILE the Rust figures are read from that `sigma-bench --json`
   output; with --rust the bench runs `cargo run --release -p sigma-bench` itself.
2. Two Python threads each calling compress_batch(threads=1) at once against one thread (the
   GIL is released while records are coded).
3. compress_batch(threads=2) against threads=1.

Each figure is the best of --repeat runs (wall clock), all in the same process, so that the
ratios compare like with like on a shared machine.

    python python/bench/bench_batch.py --rust          # from the repository root
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import pyarrow as pa

import sigmalang as sl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "chat-dev.jsonl")


def load(path):
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f if line.strip()], path
    sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
    from conftest import chat_records

    return chat_records(20000), "generated chat-like records"


def best(fn, repeat, clock=time.perf_counter):
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def rust_figures(args, dev):
    if args.rust_json:
        with open(args.rust_json) as f:
            data = json.load(f)
    elif args.rust:
        cmd = ["cargo", "run", "-q", "--release", "-p", "sigma-bench", "--",
               "--only", "sigma-default", "--json", "--dev", dev]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        data = json.loads(out)
    else:
        return None
    row = next(r for r in data["rows"] if r["codec"] == "sigma-default")
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=DEFAULT_CORPUS, help="a JSONL file with a text field")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rust", action="store_true", help="run sigma-bench for the Rust figures")
    p.add_argument("--rust-json", help="sigma-bench --json output to compare with")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()

    records, source = load(args.corpus)
    arr = pa.array(records)
    raw = sum(len(r.encode()) for r in records)
    sl.compress_batch(arr[:10], threads=1)  # loads the built-in codebook

    out = {}
    payloads = sl.compress_batch(arr, threads=1)
    packed = sum(len(x) for x in payloads.to_pylist())
    assert sl.decompress_batch(payloads, as_str=True).equals(arr)
    out["records"] = len(records)
    out["bytes"] = raw
    out["source"] = source
    out["ratio"] = raw / packed

    t1 = best(lambda: sl.compress_batch(arr, threads=1), args.repeat)
    out["threads1_mb_s"] = raw / t1 / 1e6
    # threads=1 codes on the calling thread: its CPU time is the coding's, as sigma-bench's
    # clock (the CPU time of the measuring thread) counts it.
    c1 = best(lambda: sl.compress_batch(arr, threads=1), args.repeat, time.thread_time)
    out["threads1_cpu_mb_s"] = raw / c1 / 1e6
    t2 = best(lambda: sl.compress_batch(arr, threads=2), args.repeat)
    out["threads2_mb_s"] = raw / t2 / 1e6
    out["threads2_vs_threads1"] = t1 / t2

    def two_python_threads():
        ts = [threading.Thread(target=sl.compress_batch, args=(arr,), kwargs={"threads": 1})
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    tp = best(two_python_threads, args.repeat)
    # Two threads did twice the work: throughput against one thread.
    out["two_python_threads_vs_one"] = 2 * t1 / tp
    td = best(lambda: sl.decompress_batch(payloads, threads=1), args.repeat)
    out["decompress_threads1_mb_s"] = raw / td / 1e6

    dev = args.corpus if os.path.exists(args.corpus) else None
    rust = rust_figures(args, dev) if dev else None
    if rust:
        out["rust_ratio"] = rust["ratio"]
        out["rust_encode_mb_s"] = rust["encode_mb_s"]
        out["rust_encode_wall_mb_s"] = rust.get("encode_wall_mb_s")
        out["python_vs_rust_speed_cpu"] = out["threads1_cpu_mb_s"] / rust["encode_mb_s"]
        if rust.get("encode_wall_mb_s"):
            out["python_vs_rust_speed_wall"] = out["threads1_mb_s"] / rust["encode_wall_mb_s"]

    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['records']} records, {raw} bytes ({source})")
    print(f"compress_batch threads=1: ratio {out['ratio']:.3f}x, {out['threads1_mb_s']:.1f} MB/s"
          f" wall, {out['threads1_cpu_mb_s']:.1f} MB/s CPU"
          f" (decompress_batch {out['decompress_threads1_mb_s']:.1f} MB/s wall)")
    if rust:
        print(f"Rust library, one thread:  ratio {rust['ratio']:.3f}x, "
              f"{rust['encode_wall_mb_s']:.1f} MB/s wall, {rust['encode_mb_s']:.1f} MB/s CPU"
              f" -> Python/Rust {out.get('python_vs_rust_speed_wall', 0):.2f}x wall,"
              f" {out['python_vs_rust_speed_cpu']:.2f}x CPU")
    print(f"two Python threads at threads=1: {out['two_python_threads_vs_one']:.2f}x one thread")
    print(f"threads=2: {out['threads2_mb_s']:.1f} MB/s, {out['threads2_vs_threads1']:.2f}x threads=1")


if __name__ == "__main__":
    main()
