"""Codebooks: built-in, trained, serialized, pickled."""

import pickle

import pyarrow as pa
import pytest

import sigmalang as sl


def test_default():
    cb = sl.Codebook.default()
    assert len(cb.id) == 16 and int(cb.id, 16) != 0
    assert cb == sl.Codebook.default()
    assert sl.Codebook.from_bytes(cb.to_bytes()) == cb
    assert len(cb) == len(cb.to_bytes())


def test_train_levels_and_inputs(records):
    fast = sl.Codebook.train(records, level="fast")
    default = sl.Codebook.train(records)
    assert fast != default
    # The same records from an Arrow array, or as bytes, make the same codebook.
    assert sl.Codebook.train(pa.array(records), level="fast") == fast
    assert sl.Codebook.train([r.encode() for r in records], level="fast") == fast
    data = "".join(records[:200]).encode()
    assert sl.decompress(sl.compress(data, fast), fast) == data
    with pytest.raises(sl.InvalidArgumentError, match="unknown level"):
        sl.Codebook.train(records, level="huge")
    with pytest.raises(sl.InvalidArgumentError, match="no records"):
        sl.Codebook.train([])


def test_pickle(trained):
    back = pickle.loads(pickle.dumps(trained))
    assert back == trained and back.id == trained.id
    assert back.to_bytes() == trained.to_bytes()
    # The built-in codebook pickles by name, not as 1.4 MB.
    assert len(pickle.dumps(sl.Codebook.default())) < 200
    assert pickle.loads(pickle.dumps(sl.Codebook.default())) == sl.Codebook.default()


def test_corrupt_codebook(trained):
    b = bytearray(trained.to_bytes())
    with pytest.raises(sl.BadMagicError):
        sl.Codebook.from_bytes(b"XXXX" + bytes(b[4:]))
    b[len(b) // 2] ^= 1
    with pytest.raises(sl.ChecksumError):
        sl.Codebook.from_bytes(bytes(b))
    with pytest.raises(sl.SigmaLangError):
        sl.Codebook.from_bytes(bytes(b[:100]))
