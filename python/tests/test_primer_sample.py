"""The archive primer sampled from all of the records: ``ArchiveWriter.write_table`` (a table
written first) and ``ArchiveWriter(primer_sample=...)``."""

import random

import pyarrow as pa
import pytest

import sigmalang as sl

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def sorted_by_topic(topics=8, per_topic=700, seed=1):
    """Records sorted by topic, as files often are (code by crate, manual pages by name): each
    topic has its own vocabulary, so its first records teach the coder nothing of the rest.
    Returns the records and each one's topic."""
    rng = random.Random(seed)
    records, keys = [], []
    for t in range(topics):
        words = ["".join(rng.choice(_LETTERS) for _ in range(rng.randrange(4, 11)))
                 for _ in range(120)]
        for i in range(per_topic):
            body = " ".join(rng.choice(words) for _ in range(rng.randrange(8, 20)))
            records.append(f"[{t}:{i}] {body}.")
            keys.append(f"topic{t}")
    return records, keys


@pytest.fixture(scope="module")
def topical():
    return sorted_by_topic()


# The writers below code every record alone (block=0): the default trial of 4 KiB pages would
# put these short records in pages, which learn from their neighbours whatever the primer.


def size(path):
    return path.stat().st_size


def test_a_table_sorted_by_topic_packs_smaller_sampled(tmp_path, topical):
    records, _ = topical
    total = sum(len(r) + 1 for r in records)
    assert total > 8 * 64 * 1024  # the primer is a small share of the records
    table = pa.table({"text": records})
    with sl.ArchiveWriter(tmp_path / "sampled.sga", block=0, primer=64) as w:
        assert w.write_table(table) == len(records)
        assert len(w) == len(records)
    # The same records fed as they go: the primer is the first rows (one topic).
    with sl.ArchiveWriter(tmp_path / "first.sga", block=0, primer=64) as w:
        w.add_many(records)
    sampled, first = size(tmp_path / "sampled.sga"), size(tmp_path / "first.sga")
    assert sampled < first * 0.97, (sampled, first)
    # Both read back every record.
    for name in ("sampled.sga", "first.sga"):
        r = sl.ArchiveReader(tmp_path / name)
        assert len(r) == len(records)
        assert r.to_arrow(as_str=True).to_pylist() == records
        assert [r[i].decode() for i in (0, 1, 2500, -1)] == [records[i]
                                                               for i in (0, 1, 2500, -1)]


def test_keyed_table_polars_and_threads(tmp_path, topical):
    records, keys = topical
    table = pa.table({"topic": keys, "text": records})
    with sl.ArchiveWriter(tmp_path / "a.sga", block=0, context_key="topic", primer=64) as w:
        w.write_table(table)
    with sl.ArchiveWriter(tmp_path / "b.sga", block=0, context_key="topic", primer=64,
                          threads=2) as w:
        w.write_table(table)
    assert (tmp_path / "a.sga").read_bytes() == (tmp_path / "b.sga").read_bytes()
    pl = pytest.importorskip("polars")
    with sl.ArchiveWriter(tmp_path / "c.sga", block=0, context_key="topic", primer=64) as w:
        w.write_table(pl.from_arrow(table))
    assert (tmp_path / "c.sga").read_bytes() == (tmp_path / "a.sga").read_bytes()
    with sl.ArchiveWriter(tmp_path / "first.sga", block=0, context_key="topic", primer=64) as w:
        w.add_many(records, [f'"{k}"' for k in keys])
    assert size(tmp_path / "a.sga") < size(tmp_path / "first.sga") * 0.97
    assert list(sl.ArchiveReader(tmp_path / "a.sga")) == [r.encode() for r in records]


def test_only_a_table_written_first_is_sampled(tmp_path, topical):
    records, _ = topical
    table = pa.table({"text": records})
    # After a record, the primer is the first records again: as adding them one by one.
    with sl.ArchiveWriter(tmp_path / "late.sga", block=0, primer=64) as w:
        w.add(records[0])
        w.write_table(table.slice(1))
    with sl.ArchiveWriter(tmp_path / "first.sga", block=0, primer=64) as w:
        for r in records:
            w.add(r)
    assert (tmp_path / "late.sga").read_bytes() == (tmp_path / "first.sga").read_bytes()
    # More tables after the first: their rows are added after it, the primer stays the first
    # table's sample.
    half = len(records) // 2
    with sl.ArchiveWriter(tmp_path / "two.sga", block=0, primer=64) as w:
        w.write_table(table.slice(0, half))
        w.write_table(table.slice(half))
    assert list(sl.ArchiveReader(tmp_path / "two.sga")) == [r.encode() for r in records]
    # No primer: nothing to sample, the same archive either way.
    with sl.ArchiveWriter(tmp_path / "none1.sga", block=0, primer=0) as w:
        w.write_table(table)
    with sl.ArchiveWriter(tmp_path / "none2.sga", block=0, primer=0) as w:
        w.add_many(records)
    assert (tmp_path / "none1.sga").read_bytes() == (tmp_path / "none2.sga").read_bytes()


def test_small_tables_are_their_own_primer(tmp_path, records, topical):
    # A table no larger than the primer is all of its sample: the writer primes with the first
    # records, this table's and those after it, as if they were fed one by one (the archive
    # `sigma pack` makes of them from standard input).
    table = pa.table({"text": records})
    for block in (0, "auto", "auto:4KiB"):
        with sl.ArchiveWriter(tmp_path / "t.sga", block=block) as w:
            w.write_table(table)
        with sl.ArchiveWriter(tmp_path / "a.sga", block=block) as w:
            w.add_many(records)
        assert (tmp_path / "t.sga").read_bytes() == (tmp_path / "a.sga").read_bytes(), block
    more, _ = topical
    with sl.ArchiveWriter(tmp_path / "t2.sga", block=0, primer=512) as w:
        w.write_table(table)
        w.write_table(pa.table({"text": more}))
    with sl.ArchiveWriter(tmp_path / "a2.sga", block=0, primer=512) as w:
        w.add_many(records + more)
    assert (tmp_path / "t2.sga").read_bytes() == (tmp_path / "a2.sga").read_bytes()
    # Empty tables leave the writer as it was (the next table is sampled); empty archives.
    big = pa.table({"text": more})
    with sl.ArchiveWriter(tmp_path / "e.sga", block=0, primer=64) as w:
        assert w.write_table(pa.table({"text": pa.array([], pa.string())})) == 0
        assert len(w) == 0
        w.write_table(big)
    with sl.ArchiveWriter(tmp_path / "b.sga", block=0, primer=64) as w:
        w.write_table(big)
    assert (tmp_path / "e.sga").read_bytes() == (tmp_path / "b.sga").read_bytes()
    with sl.ArchiveWriter(tmp_path / "e1.sga", block=0) as w:
        w.write_table(pa.table({"text": pa.array([], pa.string())}))
    with sl.ArchiveWriter(tmp_path / "e2.sga", block=0) as w:
        pass
    assert (tmp_path / "e1.sga").read_bytes() == (tmp_path / "e2.sga").read_bytes()
    assert len(sl.ArchiveReader(tmp_path / "e1.sga")) == 0


def test_primer_auto(tmp_path, topical):
    records, _ = topical
    table = pa.table({"text": records})
    total = sum(len(r.encode()) + 1 for r in records)
    kib = max(64, min(1024, total // 4 // 1024))
    with sl.ArchiveWriter(tmp_path / "auto.sga", block=0, primer="auto") as w:
        w.write_table(table)
    assert list(sl.ArchiveReader(tmp_path / "auto.sga")) == [r.encode() for r in records]
    # A quarter of the records: more than 64 KiB of primer, and smaller for it.
    assert kib > 64
    with sl.ArchiveWriter(tmp_path / "p64.sga", block=0, primer=64) as w:
        w.write_table(table)
    assert size(tmp_path / "auto.sga") < size(tmp_path / "p64.sga")
    # A table of 64 KiB or less: a primer of 64 KiB, all of it (the first records).
    small = table.slice(0, 500)
    with sl.ArchiveWriter(tmp_path / "s1.sga", block=0, primer="auto") as w:
        w.write_table(small)
    with sl.ArchiveWriter(tmp_path / "s2.sga", block=0, primer=64) as w:
        w.write_table(small)
    assert (tmp_path / "s1.sga").read_bytes() == (tmp_path / "s2.sga").read_bytes()
    # Fed as it goes, "auto" is sigma pack's from standard input: 256 KiB.
    with sl.ArchiveWriter(tmp_path / "f1.sga", block=0, primer="auto") as w:
        w.add_many(records)
    with sl.ArchiveWriter(tmp_path / "f2.sga", block=0, primer=256) as w:
        w.add_many(records)
    assert (tmp_path / "f1.sga").read_bytes() == (tmp_path / "f2.sga").read_bytes()


def test_primer_sample_records_and_keys(tmp_path, topical):
    records, keys = topical
    # Every 50th record: a sample from all topics, known before the records are fed.
    sample = records[::50]
    with sl.ArchiveWriter(tmp_path / "s.sga", block=0, primer=64, primer_sample=sample) as w:
        for r in records:
            w.add(r)
    with sl.ArchiveWriter(tmp_path / "first.sga", block=0, primer=64) as w:
        for r in records:
            w.add(r)
    assert size(tmp_path / "s.sga") < size(tmp_path / "first.sga") * 0.97
    assert list(sl.ArchiveReader(tmp_path / "s.sga")) == [r.encode() for r in records]
    # Any iterable; bytes or str; an Arrow array: the same archive.
    for other in (iter(sample), (r.encode() for r in sample), pa.array(sample),
                  pa.chunked_array([sample[:10], sample[10:]])):
        with sl.ArchiveWriter(tmp_path / "o.sga", block=0, primer=64, primer_sample=other) as w:
            w.add_many(records)
        assert (tmp_path / "o.sga").read_bytes() == (tmp_path / "s.sga").read_bytes()
    # (key, record) pairs, keys as add() takes them; a table written after a sample is not
    # sampled again.
    pairs = [(keys[i], records[i]) for i in range(0, len(records), 50)]
    with sl.ArchiveWriter(tmp_path / "k.sga", block=0, primer=64, primer_sample=pairs) as w:
        w.add_many(records, keys)
    with sl.ArchiveWriter(tmp_path / "kt.sga", block=0, context_key="topic", primer=64,
                          primer_sample=[(f'"{k}"', r) for k, r in pairs]) as w:
        w.write_table(pa.table({"topic": keys, "text": records}))
    r = sl.ArchiveReader(tmp_path / "k.sga")
    assert r.to_arrow(as_str=True).to_pylist() == records
    assert list(sl.ArchiveReader(tmp_path / "kt.sga")) == [x.encode() for x in records]
    # Mixed: records without a key among pairs.
    mixed = [records[0], (b"topic1", records[800].encode()), (None, records[1600])]
    with sl.ArchiveWriter(tmp_path / "m.sga", block=0, primer=64, primer_sample=mixed) as w:
        w.add_many(records[:100])
    assert list(sl.ArchiveReader(tmp_path / "m.sga")) == [x.encode() for x in records[:100]]
    # An empty sample: no primer worth keeping, every record still there.
    with sl.ArchiveWriter(tmp_path / "e.sga", block=0, primer=64, primer_sample=[]) as w:
        w.add_many(records[:100])
    assert len(sl.ArchiveReader(tmp_path / "e.sga")) == 100


@pytest.mark.parametrize("sample, message", [
    (5, "not int"),
    ("some text", "not a single str or bytes"),
    (b"some bytes", "not a single str or bytes"),
    ([1, 2], "item 0 is a int"),
    (["ok", None], "item 1 is a NoneType"),
    ([("k", 5)], "the record is a int"),
    ([(5, "r")], "the key is a int"),
    ([("a", "b", "c")], "item 0 is a tuple"),
    (pa.array([1, 2]), "Arrow array of string"),
])
def test_primer_sample_errors(tmp_path, sample, message):
    with pytest.raises(TypeError, match=message):
        sl.ArchiveWriter(tmp_path / "x.sga", block=0, primer_sample=sample)
    assert list(tmp_path.iterdir()) == []


def test_primer_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a primer"):
        sl.ArchiveWriter(tmp_path / "x.sga", block=0, primer=0, primer_sample=["a"])
    with pytest.raises(ValueError, match='primer must be "auto"'):
        sl.ArchiveWriter(tmp_path / "x.sga", block=0, primer="big")
    with pytest.raises(ValueError, match="at most 16384"):
        sl.ArchiveWriter(tmp_path / "x.sga", block=0, primer=20000)
    assert list(tmp_path.iterdir()) == []
    # Keys and records of a table that do not match, after the writer is ready: nothing
    # written, and the writer can still be used.
    w = sl.ArchiveWriter(tmp_path / "y.sga", block=0, primer=64)
    with pytest.raises(ValueError, match="2 records but 1 keys"):
        w.add_many(["a", "b"], ["k"])
    w.write_table(pa.table({"text": ["a", "b"]}))
    w.close()
    assert list(sl.ArchiveReader(tmp_path / "y.sga")) == [b"a", b"b"]
