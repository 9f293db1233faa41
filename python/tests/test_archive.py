"""ArchiveWriter / ArchiveReader."""

import hashlib
import json
import os
import subprocess

import pyarrow as pa
import pytest

import sigmalang as sl
from conftest import sigma_binary


def test_round_trip(tmp_path, records):
    path = tmp_path / "chat.sga"
    with sl.ArchiveWriter(path) as w:
        for i, r in enumerate(records):
            assert w.add(r, key=f"conv{i % 13}") == i
        assert len(w) == len(records)
    r = sl.ArchiveReader(path)
    assert len(r) == len(records)
    assert r.get(5) == records[5].encode()
    assert r[-1] == records[-1].encode()
    assert list(r) == [x.encode() for x in records]
    assert r.to_arrow(as_str=True).to_pylist() == records
    assert r.to_arrow().type == pa.large_binary()
    assert r.field == "text" and r.codebook_id == sl.Codebook.default().id
    with pytest.raises(IndexError):
        r.get(len(records))


def test_write_table_pyarrow_and_polars(tmp_path, records, trained):
    n = len(records)
    table = pa.table({"conv": [i % 17 for i in range(n)], "body": records})
    with sl.ArchiveWriter(tmp_path / "a.sga", trained, context_key="conv", field="body") as w:
        assert w.write_table(table) == n
    with sl.ArchiveWriter(tmp_path / "b.sga", trained, context_key="conv", field="body") as w:
        for i, r in enumerate(records):
            w.add(r, key=str(i % 17))
    # Keyed by the same values (the archive names the key field), the same archive, whatever
    # the source.
    assert (tmp_path / "a.sga").read_bytes() == (tmp_path / "b.sga").read_bytes()
    pl = pytest.importorskip("polars")
    with sl.ArchiveWriter(tmp_path / "c.sga", trained, context_key="conv", field="body") as w:
        w.write_table(pl.from_arrow(table))
    assert (tmp_path / "c.sga").read_bytes() == (tmp_path / "a.sga").read_bytes()
    r = sl.ArchiveReader(tmp_path / "a.sga", trained)
    assert r.field == "body"
    assert r.to_arrow(as_str=True).to_pylist() == records
    with pytest.raises(sl.CodebookMismatchError):
        sl.ArchiveReader(tmp_path / "a.sga", sl.Codebook.default())
    # Without the codebook, the archive opens but its records cannot be decoded.
    with pytest.raises(sl.SigmaLangError):
        sl.ArchiveReader(tmp_path / "a.sga").get(0)


def test_threads_do_not_change_the_archive(tmp_path, records):
    for t in (1, 2):
        with sl.ArchiveWriter(tmp_path / f"{t}.sga", threads=t) as w:
            w.add_many(records, [f"k{i % 5}" for i in range(len(records))])
    assert (tmp_path / "1.sga").read_bytes() == (tmp_path / "2.sga").read_bytes()


def test_exception_leaves_no_file(tmp_path, records):
    path = tmp_path / "x.sga"
    with pytest.raises(RuntimeError):
        with sl.ArchiveWriter(path) as w:
            w.add(records[0])
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []


def test_damage_is_reported(tmp_path, records):
    path = tmp_path / "d.sga"
    with sl.ArchiveWriter(path) as w:
        w.add_many(records)
    data = bytearray(path.read_bytes())
    data[200] ^= 0x10
    path.write_bytes(bytes(data))
    r = sl.ArchiveReader(path)
    with pytest.raises(sl.SigmaLangError):
        r.to_arrow()
    with pytest.raises(sl.BadMagicError):
        p = tmp_path / "notes.txt"
        p.write_bytes(b"just some text, not an archive at all" * 3)
        sl.ArchiveReader(p)


def test_cli_reads_python_archives(tmp_path, records):
    sigma = sigma_binary()
    if sigma is None:
        pytest.skip("the sigma CLI is not built")
    path = tmp_path / "py.sga"
    with sl.ArchiveWriter(path, context_key="conversation") as w:
        w.write_table(pa.table({"conversation": [f"c{i % 9}" for i in range(len(records))],
                                "text": records}))
    out = subprocess.run([sigma, "unpack", "-q", str(path)], capture_output=True, check=True)
    lines = out.stdout.decode().splitlines()
    assert [json.loads(line)["text"] for line in lines] == records
    # And sigma pack of the same records and keys makes the same archive, with the same primer
    # and block options: the defaults (those of sigma pack reading standard input), none
    # (each record alone, no primer: the library's own defaults), and fixed pages. The records
    # go to sigma pack on standard input: a writer fed as it goes (add_many here, or sigma pack
    # reading a pipe) makes its primer of the first records, while sigma pack of a regular file
    # samples the primer from all of it, as write_table does from a table larger than the
    # primer (a smaller one is its own sample: the same archive as fed record by record).
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"conversation": f"c{i % 9}", "text": r}) + "\n"
                           for i, r in enumerate(records)))
    table = pa.table({"conversation": [f"c{i % 9}" for i in range(len(records))],
                      "text": records})
    for kwargs, flags in [({}, ["--primer", "256"]),
                          ({"primer": 0, "block": 0}, ["--no-primer", "--block", "0"]),
                          ({"primer": 4, "block": 2048}, ["--primer", "4", "--block", "2KiB"]),
                          ({"block": "auto"}, ["--primer", "256", "--block", "auto"]),
                          ({"block": "auto:8KiB"}, ["--primer", "256", "--block", "auto:8KiB"])]:
        path = tmp_path / "py.sga"
        with sl.ArchiveWriter(path, context_key="conversation", **kwargs) as w:
            w.add_many(records, [f'"c{i % 9}"' for i in range(len(records))])
        if kwargs.get("primer", 256) * 1024 >= sum(len(r.encode()) + 1 for r in records):
            with sl.ArchiveWriter(tmp_path / "table.sga", context_key="conversation",
                                  **kwargs) as w:
                w.write_table(table)
            table_digest = hashlib.sha256((tmp_path / "table.sga").read_bytes()).hexdigest()
            assert table_digest == hashlib.sha256(path.read_bytes()).hexdigest(), flags
        subprocess.run([sigma, "pack", "-q", "-f", *flags, "--field", "text", "--context-key",
                        "conversation", "-o", str(tmp_path / "cli.sga"), "-"],
                       input=src.read_bytes(), check=True)
        # Digests, not the bytes: pytest's diff of two large byte strings takes minutes.
        cli = hashlib.sha256((tmp_path / "cli.sga").read_bytes()).hexdigest()
        assert cli == hashlib.sha256(path.read_bytes()).hexdigest(), flags
        assert [x.decode() for x in sl.ArchiveReader(path)] == records


def test_block_option_is_parsed_like_the_cli(tmp_path):
    # 0, a number of bytes, "auto" (64 KiB trial), "auto:SIZE"; anything else is refused
    # before a file is made.
    for bad in ["4KiB", "auto:", "auto:0", "auto:x", "pages", -1]:
        with pytest.raises(ValueError):
            sl.ArchiveWriter(tmp_path / "bad.sga", block=bad)
    for bad in [1.5, True, None]:
        with pytest.raises(TypeError):
            sl.ArchiveWriter(tmp_path / "bad.sga", block=bad)
    assert not (tmp_path / "bad.sga").exists()
    # Short lines: the default trial puts them in 4 KiB pages, smaller than records alone
    # (a primer smaller than the lines, as the trial codes records after the primer's).
    lines = [f"{i:05} GET /api/v{i % 3}/items/{i * 7 % 1000} 200 {i % 97}ms" for i in range(4000)]
    sizes = {}
    for block in [0, "auto:4KiB", "auto:4096"]:
        path = tmp_path / f"{block}.sga".replace(":", "_")
        with sl.ArchiveWriter(path, block=block, primer=16) as w:
            w.add_many(lines)
        assert [x.decode() for x in sl.ArchiveReader(path)] == lines
        sizes[block] = path.stat().st_size
    assert sizes["auto:4KiB"] == sizes["auto:4096"] < sizes[0]
