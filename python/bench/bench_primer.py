#!/usr/bin/env python3
"""Archive sizes of JSON-lines files packed from Python as tables, by where the primer comes
from: sampled from the whole table (`ArchiveWriter.write_table` written first), the first rows
(`add_many`, a writer fed as it goes), and the `sigma` CLI's `pack --field FIELD FILE` (a primer
sampled from the file) and from standard input (the first records).

    python python/bench/bench_primer.py [--sigma target/release/sigma] FILE.jsonl ...

Sizes are exact; every Python archive is read back and compared with the table's column.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import pyarrow as pa

import sigmalang as sl


def quarter_kib(records):
    """`sigma pack`'s default primer of a file whose records hold these bytes, in KiB: a
    quarter of them, 64 to 1024 KiB."""
    total = sum(len(r.encode()) + 1 for r in records)
    return max(64, min(1024, total // 4 // 1024))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--field", default="text")
    ap.add_argument("--sigma", default=os.environ.get("SIGMA_BIN", "target/release/sigma"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    print(f"{'file':<16}{'records':>9}{'bytes':>10}  {'primer':>7}  {'sampled':>9}{'first':>9}"
          f"{'gain':>7}  {'auto':>9}{'first':>9}  {'pack FILE':>9}{'pack -':>9}")
    for f in args.files:
        records = [json.loads(line)[args.field] for line in open(f, encoding="utf-8")]
        table = pa.table({args.field: records})
        total = sum(len(r.encode()) for r in records)
        sizes = {}

        def pack(name, write, **kw):
            path = os.path.join(tmp, name + ".sga")
            with sl.ArchiveWriter(path, field=args.field, threads=2, **kw) as w:
                write(w)
            back = sl.ArchiveReader(path).to_arrow(as_str=True).to_pylist()
            assert back == records, (f, name)
            sizes[name] = os.path.getsize(path)

        pack("sampled", lambda w: w.write_table(table))
        pack("first", lambda w: w.add_many(records))
        kib = quarter_kib(records)
        pack("auto", lambda w: w.write_table(table), primer="auto")
        pack("auto_first", lambda w: w.add_many(records), primer=kib)
        cli = os.path.join(tmp, "cli.sga")
        subprocess.run([args.sigma, "pack", "-q", "-f", "-T", "2", "--field", args.field, f,
                        "-o", cli], check=True)
        sizes["cli"] = os.path.getsize(cli)
        with open(f, "rb") as src:
            subprocess.run([args.sigma, "pack", "-q", "-f", "-T", "2", "--field", args.field,
                            "-o", cli, "-"], stdin=src, check=True)
        sizes["cli_stdin"] = os.path.getsize(cli)
        gain = 100 * (sizes["sampled"] / sizes["first"] - 1)
        print(f"{os.path.basename(f):<16}{len(records):>9}{total:>10}  {'256/' + str(kib):>7}  "
              f"{sizes['sampled']:>9}{sizes['first']:>9}{gain:>6.1f}%  "
              f"{sizes['auto']:>9}{sizes['auto_first']:>9}  "
              f"{sizes['cli']:>9}{sizes['cli_stdin']:>9}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
