"""compress_batch / decompress_batch over pyarrow, polars, arro3 and lists."""

import threading
import time

import pyarrow as pa
import pytest

import sigmalang as sl
from conftest import chat_records


def reference(records, codebook=None):
    """Every record's payload, one call per record (the library's encoder, one at a time)."""
    return [sl.compress_batch([r], codebook, threads=1)[0] for r in records]


def test_lists(records, trained):
    for cb in (None, trained):
        payloads = sl.compress_batch(records, cb)
        assert isinstance(payloads, list) and all(isinstance(p, bytes) for p in payloads)
        assert sl.decompress_batch(payloads, cb, as_str=True) == records
        assert sl.decompress_batch(payloads, cb) == [r.encode() for r in records]
    assert sl.compress_batch(iter(["a", "b"])) == sl.compress_batch(["a", "b"])
    assert sl.compress_batch([None, "x"])[0] is None
    assert sl.compress_batch([]) == []
    with pytest.raises(TypeError):
        sl.compress_batch([1, 2])
    with pytest.raises(TypeError):
        sl.compress_batch("not a list")


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])
def test_pyarrow_types(records, typ):
    values = records if typ in (pa.string(), pa.large_string()) else [r.encode() for r in records]
    arr = pa.array(values[:500] + [None], typ)
    out = sl.compress_batch(arr)
    large = typ in (pa.large_string(), pa.large_binary())
    assert isinstance(out, pa.Array)
    assert out.type == (pa.large_binary() if large else pa.binary())
    assert out.null_count == 1 and out[500].as_py() is None
    assert out.to_pylist()[:500] == reference(values[:500])
    as_str = typ in (pa.string(), pa.large_string())
    back = sl.decompress_batch(out, as_str=as_str)
    assert back.to_pylist() == arr.to_pylist()
    # A slice (an array with an offset) is read from its offset.
    assert sl.compress_batch(arr.slice(100, 50)).to_pylist() == out.to_pylist()[100:150]


def test_pyarrow_chunked_and_string_view(records):
    chunked = pa.chunked_array([records[:300], records[300:301], records[301:1000]])
    out = sl.compress_batch(chunked)
    assert isinstance(out, pa.ChunkedArray) and out.num_chunks == 3
    assert out.to_pylist() == reference(records[:1000])
    assert sl.decompress_batch(out, as_str=True).to_pylist() == records[:1000]
    view = pa.array(records[:100], pa.string_view())
    assert sl.compress_batch(view).to_pylist() == reference(records[:100])


def test_polars(records):
    pl = pytest.importorskip("polars")
    s = pl.Series("text", records)
    out = sl.compress_batch(s)
    assert isinstance(out, pl.Series) and out.dtype == pl.Binary and out.name == "text"
    assert out.to_list() == reference(records)
    back = sl.decompress_batch(out, as_str=True)
    assert back.dtype == pl.String and back.to_list() == records


def test_arro3_keeps_the_codebook_in_the_field(records, trained):
    arro3 = pytest.importorskip("arro3.core")
    arr = arro3.Array.from_arrow(pa.array(records[:200]))
    out = sl.compress_batch(arr, trained)
    assert isinstance(out, arro3.Array)
    assert out.field.metadata[sl.CODEBOOK_METADATA_KEY.encode()] == trained.id.encode()
    assert pa.array(out).to_pylist() == reference(records[:200], trained)
    back = sl.decompress_batch(out, trained, as_str=True)
    assert pa.array(back).to_pylist() == records[:200]
    with pytest.raises(sl.CodebookMismatchError) as e:
        sl.decompress_batch(out)
    assert str(e.value) == (
        f"codebook mismatch: the data was encoded with codebook {trained.id}, "
        f"but codebook {sl.Codebook.default().id} was given"
    )


def test_output_does_not_depend_on_threads(records):
    arr = pa.array(chat_records(5000, seed=9))
    one = sl.compress_batch(arr, threads=1)
    for t in (0, 2, 3, 7):
        assert sl.compress_batch(arr, threads=t).equals(one)
        assert sl.decompress_batch(one, threads=t).equals(sl.decompress_batch(one, threads=1))


def test_corrupt_payloads_name_the_record(records):
    payloads = sl.compress_batch(records[:50])
    bad = list(payloads)
    bad[17] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"  # a varint that never ends
    for threads in (1, 2):
        with pytest.raises(sl.BadVarintError, match=r"record 17"):
            sl.decompress_batch(bad, threads=threads)
    bad[17] = payloads[17][:1]  # a header promising more than is there
    with pytest.raises(sl.SigmaLangError, match=r"record 17"):
        sl.decompress_batch(pa.array(bad, pa.binary()))
    # Records that are not UTF-8 are refused as text, accepted as bytes.
    raw = sl.compress_batch([b"\xff\xfe ok"])
    with pytest.raises(ValueError, match="record 0 is not valid UTF-8"):
        sl.decompress_batch(raw, as_str=True)
    assert sl.decompress_batch(raw) == [b"\xff\xfe ok"]


def test_wrong_types():
    with pytest.raises(TypeError, match="string, large_string, binary"):
        sl.compress_batch(pa.array([1, 2, 3]))


def test_two_python_threads_release_the_gil():
    arr = pa.array(chat_records(20000, seed=5))
    expected = sl.compress_batch(arr, threads=1)
    results = [None, None]

    def work(i):
        results[i] = sl.compress_batch(arr, threads=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # While both run, this thread holds the GIL only between its own steps: if compress_batch
    # kept the GIL, this loop would not advance until they were done.
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1
        time.sleep(0.001)
    for t in threads:
        t.join()
    assert results[0].equals(expected) and results[1].equals(expected)
    assert ticks > 10


def test_empty_inputs():
    assert sl.compress_batch(pa.array([], pa.string())).to_pylist() == []
    empty = pa.chunked_array([], pa.large_string())
    out = sl.compress_batch(empty)
    assert isinstance(out, pa.ChunkedArray) and len(out) == 0
    assert out.type == pa.large_binary()
    assert sl.decompress_batch(out, as_str=True).type == pa.large_string()
    assert sl.compress_batch([""]) == [b"\x00"]  # a record of zero bytes, stored
    assert sl.decompress_batch([b"\x00"], as_str=True) == [""]
