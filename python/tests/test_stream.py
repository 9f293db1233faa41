"""Streams: compress/decompress and sigmalang.open."""

import io
import os
import subprocess

import pytest

import sigmalang as sl
from conftest import chat_records, sigma_binary


def test_round_trip_default_and_trained(records, trained):
    data = "".join(records).encode()
    for cb in (None, sl.Codebook.default(), trained):
        packed = sl.compress(data, cb)
        assert len(packed) < len(data) / 3
        assert sl.decompress(packed, cb) == data


def test_empty_and_multi_chunk_and_threads():
    assert sl.decompress(sl.compress(b"")) == b""
    data = "".join(chat_records(30000, seed=3)).encode()  # more than one 1 MiB chunk
    assert len(data) > 1 << 20
    one = sl.compress(data, threads=1)
    assert sl.compress(data, threads=2) == one
    assert sl.decompress(one, threads=2) == data
    # bytes-like inputs
    assert sl.compress(bytearray(data[:1000])) == sl.compress(data[:1000])


def test_same_bytes_as_library_and_cli(tmp_path):
    data = "".join(chat_records(500)).encode()
    sigma = sigma_binary()
    if sigma is None:
        pytest.skip("the sigma CLI is not built")
    out = subprocess.run([sigma, "-c"], input=data, capture_output=True, check=True).stdout
    assert sl.compress(data) == out


def test_max_output_size():
    data = b"hello world " * 100000
    packed = sl.compress(data)
    assert sl.decompress(packed, max_output_size=len(data)) == data
    with pytest.raises(sl.InvalidArgumentError, match="max_output_size"):
        sl.decompress(packed, max_output_size=len(data) - 1)


def test_errors_are_typed_with_the_library_message(trained):
    packed = sl.compress(b"some text to compress, some text to compress")
    with pytest.raises(sl.TruncatedError) as e:
        sl.decompress(packed[:-5])
    assert isinstance(e.value, sl.SigmaLangError)
    assert str(e.value).startswith("input truncated while reading")
    assert e.value.offset is not None
    with pytest.raises(sl.BadMagicError, match="not a SigmaLang file"):
        sl.decompress(b"PK\x03\x04" + packed[4:])
    damaged = bytearray(packed)
    damaged[20] ^= 0x40
    with pytest.raises(sl.SigmaLangError):
        sl.decompress(bytes(damaged))
    with pytest.raises(sl.CodebookMismatchError) as e:
        sl.decompress(packed, trained)
    assert str(e.value) == (
        f"codebook mismatch: the data was encoded with codebook {sl.Codebook.default().id}, "
        f"but codebook {trained.id} was given (at byte 8)"
    )
    with pytest.raises(TypeError):
        sl.compress("a str is not bytes")


def test_error_message_is_the_cli_message(tmp_path):
    sigma = sigma_binary()
    if sigma is None:
        pytest.skip("the sigma CLI is not built")
    packed = sl.compress(b"some text to compress, some text to compress")
    bad = tmp_path / "bad.sgm"
    bad.write_bytes(packed[:-5])
    r = subprocess.run([sigma, "-d", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    with pytest.raises(sl.TruncatedError) as e:
        sl.decompress(packed[:-5])
    assert str(e.value) in r.stderr


def test_open_binary_and_text(tmp_path, records, trained):
    path = tmp_path / "chat.sgm"
    with sl.open(path, "wb", codebook=trained) as f:
        for r in records:
            f.write(r.encode())
    data = "".join(records).encode()
    assert sl.decompress(path.read_bytes(), trained) == data
    with sl.open(path, "rb", codebook=trained) as f:
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]
    with sl.open(str(path), "rt", codebook=trained) as f:
        lines = list(f)
    assert lines == records
    with sl.open(tmp_path / "t.sgm", "wt") as f:
        f.write("héllo\nwörld\n")
    with sl.open(tmp_path / "t.sgm") as f:
        assert f.readline() == "héllo\n".encode()
    with pytest.raises(ValueError):
        sl.open(path, "ab")


def test_open_file_objects(records):
    buf = io.BytesIO()
    with sl.open(buf, "wb") as f:
        f.write("".join(records).encode())
    assert not buf.closed  # a file object given is not closed with the stream
    packed = buf.getvalue()
    assert sl.decompress(packed) == "".join(records).encode()
    with sl.open(io.BytesIO(packed), "rt") as f:
        assert f.read() == "".join(records)
    with pytest.raises(sl.TruncatedError):
        with sl.open(io.BytesIO(packed[:-3]), "rb") as f:
            f.read()


def test_open_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        sl.open(os.path.join(tmp_path, "nope.sgm"), "rb")
