#!/usr/bin/env python3
"""A chat dataset through Parquet on a local Ray cluster: SigmaLang against Parquet's own
ZSTD and BROTLI column compression (size and time), and the same bytes on one or two nodes.

The dataset is generated: records whose lengths follow the real messages of chat-train.jsonl,
their text drawn from an order-2 word Markov chain trained on the same file (novel messages
with the statistics of real chat; exact long repeats across records are about as rare as in
real data, so page-level codecs get no unfair help). Generation runs on the cluster and is not
timed; it is slow (pure Python), so --gb unique gigabytes are generated and the dataset is
--copies copies of them, each hundreds of MB from the next (far beyond a Parquet page, and
SigmaLang codes each record on its own: no codec gains from the repeats).

For each codec the job is: read the uncompressed source Parquet, write the text column
compressed (SigmaLang: `sigmalang.ray.write_parquet`, payloads stored with Parquet compression
off; the others: `Dataset.write_parquet(compression=...)`), then read it back and decode every
text. Reported: output bytes, ratio (text bytes / output bytes), write and read seconds (wall).

    python python/bench/bench_ray.py --gb 0.2 --copies 10     # 2 GB; from the repository root
"""

import argparse
import collections
import json
import os
import random
import shutil
import tempfile
import time
import zlib

import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)
import pyarrow.parquet as pq

import sigmalang as sl

# Every codec's files are written alike: row groups of 50,000 records (about 45 MB of text;
# Ray otherwise writes each block it receives as a row group, sometimes of a few rows) and no
# dictionary encoding (the texts are unique; Parquet would try and fall back).
WRITE = {"row_group_size": 50_000, "use_dictionary": False}

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "chat-train.jsonl")


def markov(path):
    """An order-2 word chain and the record lengths (in words) of ``path``."""
    chain = collections.defaultdict(list)
    lengths = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = json.loads(line)["text"].split(" ")
            lengths.append(len(words))
            a, b = "", ""
            for w in words:
                chain[(a, b)].append(w)
                a, b = b, w
    return dict(chain), lengths


_CHAIN = {}


def generate(batch, chain_ref, lengths):
    import ray

    chain = _CHAIN.get("chain")
    if chain is None:
        chain = _CHAIN["chain"] = ray.get(chain_ref[0])
    out = []
    for seed in batch["id"].to_pylist():
        rng = random.Random(seed)
        n = rng.choice(lengths)
        a, b, words = "", "", []
        for _ in range(n):
            nxt = chain.get((a, b))
            if not nxt:
                a, b = "", ""
                nxt = chain[("", "")]
            w = rng.choice(nxt)
            words.append(w)
            a, b = b, w
        out.append(" ".join(words))
    return pa.table({"id": batch["id"], "text": pa.array(out, pa.large_string())})


def text_bytes(table):
    return sum(len(t.encode()) for t in table.column("text").to_pylist())


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def _row_hashes(batch, column):
    total = 0
    for i, v in zip(batch["id"].to_pylist(), batch[column].to_pylist()):
        total += zlib.crc32(v if isinstance(v, bytes) else v.encode(), zlib.crc32(str(i).encode()))
    return pa.table({"sum": [total], "rows": [batch.num_rows]})


def digest(ds, column):
    """A sum of CRC-32s of (id, column bytes) over every row, computed where the blocks are:
    the same rows with the same bytes give the same sum, in any order or blocking."""
    import ray

    parts = ds.map_batches(_row_hashes, batch_format="pyarrow", fn_kwargs={"column": column})
    tables = ray.get(parts.to_arrow_refs())
    return (sum(sum(t.column("sum").to_pylist()) for t in tables),
            sum(sum(t.column("rows").to_pylist()) for t in tables))


def replicate(unique, source, copies, records):
    """``copies`` copies of the files of ``unique``, ids shifted so that every row is distinct.
    A copy is ``records`` rows (hundreds of MB) away from the last, far beyond any Parquet
    page, so page-level codecs gain nothing from the repeats (nor does SigmaLang, which codes
    each record on its own)."""
    os.makedirs(source, exist_ok=True)
    files = sorted(f for f in os.listdir(unique) if f.endswith(".parquet"))
    for k in range(copies):
        for j, f in enumerate(files):
            t = pq.read_table(os.path.join(unique, f))
            t = t.set_column(0, "id", pa.compute.add(t.column("id"), k * records))
            pq.write_table(t, os.path.join(source, f"part-{k:03d}-{j:05d}.parquet"),
                           compression="none")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gb", type=float, default=0.2, help="gigabytes of unique text to generate")
    p.add_argument("--copies", type=int, default=1, help="the dataset is this many copies")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--store-mb", type=int, default=2000, help="object store per node, MB")
    p.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    p.add_argument("--skip-one-node", action="store_true")
    args = p.parse_args()

    import ray
    import ray.data
    import sigmalang.ray as slr
    from ray.cluster_utils import Cluster

    work = args.dir or tempfile.mkdtemp(prefix="sigma-ray-bench-")
    os.makedirs(work, exist_ok=True)
    results = {"gb": args.gb, "nodes": args.nodes}

    def start(nodes):
        c = Cluster(initialize_head=True,
                    head_node_args={"num_cpus": 1, "object_store_memory": args.store_mb << 20})
        for _ in range(nodes - 1):
            c.add_node(num_cpus=1, object_store_memory=args.store_mb << 20)
        ray.init(address=c.address, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        return c

    def stop(c):
        ray.shutdown()
        c.shutdown()

    chain, lengths = markov(TRAIN)
    mean = sum(len(json.loads(line)["text"].encode()) for line in open(TRAIN, encoding="utf-8"))
    mean /= len(lengths)
    records = int(args.gb * 1e9 / mean)
    unique = os.path.join(work, "unique")
    source = os.path.join(work, f"source-x{args.copies}")
    cluster = start(args.nodes)
    try:
        if not os.path.exists(unique):
            t = time.time()
            ds = ray.data.range(records, override_num_blocks=max(8, int(args.gb * 40)))
            ds = ds.map_batches(generate, batch_format="pyarrow",
                                fn_kwargs={"chain_ref": [ray.put(chain)], "lengths": lengths})
            ds.write_parquet(unique, compression="none")
            print(f"generated {records} records in {time.time() - t:.0f} s", flush=True)
        if not os.path.exists(source):
            replicate(unique, source, args.copies, records)
        src = ray.data.read_parquet(source)
        raw = sum(ray.get([ray.remote(lambda t: text_bytes(t)).remote(r)
                           for r in src.to_arrow_refs()]))
        records *= args.copies
        results["records"] = records
        results["text_bytes"] = raw
        print(f"{records} records, {raw / 1e9:.2f} GB of text", flush=True)

        t = time.time()
        cb = slr.train_codebook(src, "text", sample_records=20000, level="default")
        results["train_s"] = time.time() - t

        rows = []
        for name in ("sigmalang", "zstd", "brotli"):
            out = os.path.join(work, name)
            shutil.rmtree(out, ignore_errors=True)
            t = time.time()
            if name == "sigmalang":
                slr.write_parquet(src, out, "text", cb, compression="none", **WRITE)
            else:
                src.write_parquet(out, compression=name, **WRITE)
            w = time.time() - t
            t = time.time()
            if name == "sigmalang":
                back = slr.read_parquet(out, codebook=cb)
            else:
                back = ray.data.read_parquet(out)
            crc, n = digest(back, "text")
            assert n == records
            r = time.time() - t
            size = dir_bytes(out)
            row = {"codec": name, "bytes": size, "ratio": raw / size, "write_s": w, "read_s": r,
                   "text_crc": crc, "rows": n}
            rows.append(row)
            print(json.dumps(row), flush=True)
        results["rows"] = rows
        assert len({r["text_crc"] for r in rows}) == 1, "decoded texts differ"
        payload_two, _ = digest(ray.data.read_parquet(os.path.join(work, "sigmalang")), "text")
    finally:
        stop(cluster)
    results["payload_crc_nodes"] = {args.nodes: payload_two}

    if not args.skip_one_node and args.nodes != 1:
        cluster = start(1)
        try:
            src = ray.data.read_parquet(source)
            out = os.path.join(work, "sigmalang-1node")
            shutil.rmtree(out, ignore_errors=True)
            t = time.time()
            slr.write_parquet(src, out, "text", cb, compression="none", **WRITE)
            results["one_node_write_s"] = time.time() - t
            one, _ = digest(ray.data.read_parquet(out), "text")
        finally:
            stop(cluster)
        results["payload_crc_nodes"][1] = one
        results["identical_across_nodes"] = one == payload_two
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
