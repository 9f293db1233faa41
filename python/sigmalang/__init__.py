"""SigmaLang: a lossless, context-aware codec for LLM-era text.

Names follow Python's ``compression.zstd`` and python-zstandard where they fit:

- ``compress(data)`` / ``decompress(data)``: one-shot streams (the format of ``sigma FILE``);
- ``open(path, mode)``: a file object that compresses or decompresses as it goes;
- ``Codebook``: the model records are coded with (``Codebook.default()``, ``Codebook.train``);
- ``compress_batch`` / ``decompress_batch``: every record of an Arrow array (pyarrow, polars,
  arro3, ... through the Arrow PyCapsule interface, without copies) or of a list coded on its
  own, on worker threads with the GIL released;
- ``ArchiveWriter`` / ``ArchiveReader``: archives with random access (the format of ``sigma pack``).

Every error of the codec is a ``SigmaLangError`` whose message is the one the ``sigma`` CLI prints.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple, Union

from . import _sigmalang as _native
from ._sigmalang import (
    CODEBOOK_METADATA_KEY,
    BadMagicError,
    BadVarintError,
    ChecksumError,
    Codebook,
    CodebookMismatchError,
    CorruptError,
    InvalidArgumentError,
    SigmaLangError,
    SigmaLangIOError,
    TruncatedError,
    UnsupportedVersionError,
    check_codebook,
    compress,
    decompress,
)

__all__ = [
    "CODEBOOK_METADATA_KEY",
    "ArchiveReader",
    "ArchiveWriter",
    "BadMagicError",
    "BadVarintError",
    "ChecksumError",
    "Codebook",
    "CodebookMismatchError",
    "CorruptError",
    "InvalidArgumentError",
    "SigmaLangError",
    "SigmaLangIOError",
    "TruncatedError",
    "UnsupportedVersionError",
    "check_codebook",
    "compress",
    "compress_batch",
    "decompress",
    "decompress_batch",
    "open",
]

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _library(obj: Any) -> str:
    """The top-level module of ``obj``'s type: ``pyarrow``, ``polars``, ``arro3``, ..."""
    return type(obj).__module__.split(".", 1)[0]


def _prepare(data: Any) -> Any:
    """What the native batch functions take: lists, tuples and Arrow objects as they are,
    any other iterable of records as a list."""
    if isinstance(data, (list, tuple)):
        return data
    if hasattr(data, "__arrow_c_array__") or hasattr(data, "__arrow_c_stream__"):
        return data
    if isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError("expected a sequence of records, not a single str or bytes")
    return list(data)


def _like(original: Any, result: Any) -> Any:
    """``result`` (a list, or an Arrow array or chunked array from the native module) as the
    kind of object ``original`` was: pyarrow in, pyarrow out; polars in, polars out; arro3 in,
    arro3 out. Imports through the PyCapsule interface share the buffers (no copies)."""
    if isinstance(result, list):
        return result
    lib = _library(original)
    if lib == "pyarrow":
        import pyarrow as pa

        if isinstance(original, pa.ChunkedArray):
            return pa.chunked_array(result)
        return pa.array(result)
    if lib == "polars":
        import polars as pl

        return pl.Series(getattr(original, "name", ""), result)
    if lib == "arro3":
        from arro3.core import Array, ChunkedArray

        if hasattr(result, "__arrow_c_array__"):
            return Array.from_arrow(result)
        return ChunkedArray.from_arrow(result)
    return result


def compress_batch(data: Any, codebook: Optional[Codebook] = None, threads: int = 0) -> Any:
    """Compresses every record of ``data`` on its own.

    ``data`` is an Arrow array or chunked array of string, large_string, binary, large_binary
    (or their views), from any library with the Arrow PyCapsule interface, or a list of
    ``str``/``bytes``. The result is the same kind of object: a binary array (large_binary for
    large and view inputs) of per-record payloads, nulls kept, or a list of ``bytes``. Its
    field metadata names the codebook (``CODEBOOK_METADATA_KEY``) where the library keeps it.

    The work runs on ``threads`` worker threads (0: one per core; 1: the calling thread) with
    the GIL released; the payloads do not depend on ``threads``. Payloads carry no codebook
    id: keep it with the column (``sigmalang.ray`` stores it in the Parquet metadata).
    """
    return _like(data, _native.compress_batch(_prepare(data), codebook, threads))


def decompress_batch(
    data: Any,
    codebook: Optional[Codebook] = None,
    threads: int = 0,
    as_str: bool = False,
) -> Any:
    """Decompresses payloads made by :func:`compress_batch` with the same ``codebook``.

    Returns the same kind of object as ``data``: a binary array (a string array if ``as_str``;
    large types for large inputs), or a list of ``bytes`` (``str`` if ``as_str``). A damaged
    payload raises the matching ``SigmaLangError`` naming the record; a column whose field
    metadata names another codebook raises ``CodebookMismatchError``.
    """
    return _like(data, _native.decompress_batch(_prepare(data), codebook, threads, as_str))


class _RawReader(io.RawIOBase):
    """The raw layer of a file opened for reading: decompressed bytes from the native reader."""

    def __init__(self, source: Any, codebook: Optional[Codebook], threads: int) -> None:
        self._r = _native.RawStreamReader(source, codebook, threads)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._r.read(len(b))
        n = len(data)
        memoryview(b).cast("B")[:n] = data
        return n

    def readall(self) -> bytes:
        return self._r.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._r.close()
        super().close()


class _RawWriter(io.RawIOBase):
    """The raw layer of a file opened for writing: bytes handed to the native writer."""

    def __init__(self, target: Any, codebook: Optional[Codebook], threads: int) -> None:
        self._w = _native.RawStreamWriter(target, codebook, threads)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self._w.write(bytes(b))

    def close(self) -> None:
        if not self.closed:
            self._w.close()  # writes the stream's end
        super().close()


def open(  # noqa: A001 - the name of compression.zstd.open and gzip.open
    file: Any,
    mode: str = "rb",
    *,
    codebook: Optional[Codebook] = None,
    threads: int = 1,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    newline: Optional[str] = None,
) -> Any:
    """Opens a SigmaLang stream (the format of ``sigma FILE``) for reading or writing.

    ``file`` is a path or a binary file object (which is not closed with the stream). ``mode``
    is ``"rb"``/``"r"``, ``"wb"``/``"w"`` (binary: a buffered file object) or ``"rt"``/``"wt"``
    (text: an ``io.TextIOWrapper``, UTF-8 unless ``encoding`` says otherwise). A stream being
    written is complete once the file object is closed. ``threads`` worker threads code chunks
    (1 MiB each) in parallel; the bytes do not depend on it.
    """
    if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__"):
        file = os.fsdecode(file)
    text = "t" in mode
    kind = mode.replace("t", "").replace("b", "")
    if kind not in ("r", "w") or ("t" in mode and "b" in mode):
        raise ValueError(f"invalid mode {mode!r}: use r, rb, rt, w, wb or wt")
    if not text and (encoding is not None or errors is not None or newline is not None):
        raise ValueError("encoding, errors and newline are for text modes only")
    binary: io.BufferedIOBase
    if kind == "r":
        binary = io.BufferedReader(_RawReader(file, codebook, threads), buffer_size=1 << 20)
    else:
        binary = io.BufferedWriter(_RawWriter(file, codebook, threads), buffer_size=1 << 20)
    if text:
        return io.TextIOWrapper(binary, encoding=encoding or "utf-8", errors=errors, newline=newline)
    return binary


def _column(table: Any, name: str) -> Any:
    """Column ``name`` of a pyarrow Table or RecordBatch, a polars DataFrame or an arro3 Table."""
    if hasattr(table, "column"):
        try:
            return table.column(name)
        except (KeyError, TypeError):
            pass
    return table[name]


def _as_keys(column: Any) -> Any:
    """A key column as what ``sigma pack --context-key`` keys by and stores: the JSON text of
    each value (a string quoted, ``5`` and ``"5"`` apart); binaries as they are; nulls stay
    null (no key)."""
    lib = _library(column)
    if lib == "pyarrow":
        values = column.to_pylist()
    elif lib == "polars":
        values = column.to_list()
    else:
        try:
            import pyarrow as pa

            values = pa.chunked_array(column).to_pylist()
        except (ImportError, TypeError, ValueError):
            values = list(column)
    return [
        None if v is None else v if isinstance(v, bytes) else json.dumps(v, ensure_ascii=False)
        for v in values
    ]


def _primer_sample(sample: Any) -> "tuple[Any, Optional[list]]":
    """``primer_sample`` as the native writer takes it: the records (a list, or an Arrow array
    as it is) and their keys (``None`` if none has one)."""
    if hasattr(sample, "__arrow_c_array__") or hasattr(sample, "__arrow_c_stream__"):
        return sample, None
    if isinstance(sample, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            "primer_sample must be an iterable of records or of (key, record) pairs, "
            "not a single str or bytes"
        )
    try:
        items = iter(sample)
    except TypeError:
        raise TypeError(
            "primer_sample must be an iterable of records or of (key, record) pairs, "
            f"not {type(sample).__name__}"
        ) from None
    records: list = []
    keys: list = []
    text = (str, bytes, bytearray)
    for i, item in enumerate(items):
        if isinstance(item, text):
            key, record = None, item
        elif isinstance(item, tuple) and len(item) == 2:
            key, record = item
            if key is not None and not isinstance(key, text):
                raise TypeError(
                    f"primer_sample item {i}: the key is a {type(key).__name__}, "
                    "not str, bytes or None"
                )
            if not isinstance(record, text):
                raise TypeError(
                    f"primer_sample item {i}: the record is a {type(record).__name__}, "
                    "not str or bytes"
                )
        else:
            raise TypeError(
                f"primer_sample item {i} is a {type(item).__name__}, "
                "not a record (str or bytes) or a (key, record) tuple"
            )
        records.append(record)
        keys.append(key)
    if all(k is None for k in keys):
        return records, None
    return records, keys


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1 << 10, "m": 1 << 20,
               "mib": 1 << 20, "mb": 1 << 20}


def _block_option(block: Union[int, str]) -> Tuple[int, int]:
    """``ArchiveWriter``'s ``block``: (page bytes, trial page bytes), as ``sigma pack --block``
    parses it (0, ``"auto"``, ``"auto:SIZE"`` or a number of bytes)."""
    if isinstance(block, bool) or not isinstance(block, (int, str)):
        raise TypeError(f'block must be a number of bytes or "auto[:SIZE]", not {block!r}')
    if isinstance(block, int):
        if block < 0:
            raise ValueError(f"block must not be negative, not {block}")
        return block, 0
    text = block.strip().lower()
    if text == "auto":
        return 0, 64 << 10
    size = text[5:].strip() if text.startswith("auto:") else ""
    digits = size.rstrip("kmib")
    unit = size[len(digits):]
    if not digits.strip().isdigit() or unit not in _SIZE_UNITS or int(digits) == 0:
        raise ValueError(f'block must be a number of bytes, "auto" or "auto:SIZE" (like '
                         f'"auto:4KiB"), not {block!r}')
    return 0, int(digits) * _SIZE_UNITS[unit]


class ArchiveWriter:
    """Writes an archive (the format of ``sigma pack``; ``sigma unpack``/``get`` read it).

    ``add(record, key=None)`` codes a record against its context: the earlier records with the
    same ``key`` (a conversation id, say), or the records just before it. ``write_table(table)``
    adds the column ``field`` of a table (pyarrow, polars, arro3), keyed by its column
    ``context_key`` if given. The archive appears at ``path`` when the writer is closed (or the
    ``with`` block ends without an exception); on an exception nothing is written.

    ``primer`` (KiB, as ``sigma pack --primer``; 0: ``--no-primer``): the archive may store that
    much of its records once and code every record after it (kept only if a sample shows it
    pays). Which records: those of ``primer_sample`` if given; else, if ``write_table`` is the
    first thing written, runs of rows sampled from all over the table (32 runs at evenly spaced
    rows, as ``sigma pack FILE`` samples a file: a table sorted by topic packs smaller than
    with its first rows), unless the table is no larger than the primer; else the first
    records added, as ``sigma pack`` reading standard input. ``primer="auto"`` sizes it as
    ``sigma pack`` does: a quarter of the table's records
    (their bytes), 64 KiB to 1 MiB, for a table written first; 256 KiB otherwise.

    ``primer_sample``: records the primer is made of (an iterable of ``str``/``bytes``, or of
    ``(key, record)`` tuples with keys as ``add`` takes them; or an Arrow array of records), for
    records that are fed as they go but of which a sample spread over all of them is known up
    front. The sample is only the primer: every record is still added with ``add``,
    ``add_many`` or ``write_table`` (those in the sample code as matches of the primer).

    ``block`` (as ``sigma pack --block``): ``"auto:SIZE"`` (``SIZE`` in bytes, or like
    ``"4KiB"``, ``"64KiB"``) codes a sample of the records after the primer both ways and writes
    pages of SIZE if they came out at least a tenth smaller, else each record alone; records
    averaging over a sixteenth of SIZE are coded alone without a trial. ``"auto:4KiB"`` (the
    default) so puts short records (under 256 bytes on average) in 4 KiB pages where they pay;
    ``"auto"`` is ``"auto:64KiB"``. A number of bytes writes pages of about that size; 0 codes
    every record alone, against the earlier records of its context.

    The defaults (``primer=256, block="auto:4KiB"``) are those of ``sigma pack`` reading
    standard input,
    and the archive's bytes are those ``sigma pack --field FIELD --primer PRIMER --block BLOCK``
    writes for the same records and keys from standard input, whatever ``threads``, when the
    primer is made of the first records.
    """

    def __init__(
        self,
        path: StrOrBytesPath,
        codebook: Optional[Codebook] = None,
        context_key: Optional[str] = None,
        *,
        field: str = "text",
        threads: int = 1,
        primer: Union[int, str] = 256,
        block: Union[int, str] = "auto:4KiB",
        primer_sample: Optional[Iterable[Any]] = None,
    ) -> None:
        pages, auto = _block_option(block)
        if isinstance(primer, str):
            if primer != "auto":
                raise ValueError(f'primer must be "auto" or a number of KiB, not {primer!r}')
            kib: Optional[int] = None
        else:
            kib = primer
        sample, sample_keys = (None, None)
        if primer_sample is not None:
            sample, sample_keys = _primer_sample(primer_sample)
        self._w = _native.RawArchiveWriter(
            os.fsdecode(path), codebook, field, threads, context_key, kib, pages, auto,
            sample, sample_keys,
        )
        self.context_key = context_key
        self.field = field

    def add(self, record: Union[str, bytes], key: Union[str, bytes, None] = None) -> int:
        """Adds one record; returns its index."""
        return self._w.add(record, key)

    def add_many(self, records: Any, keys: Any = None) -> int:
        """Adds records (a list or an Arrow array), each keyed by the matching entry of
        ``keys`` if given; returns how many were added."""
        return self._w.add_many(_prepare(records), None if keys is None else _prepare(keys))

    def write_table(self, table: Any) -> int:
        """Adds the column ``field`` of ``table``, keyed by its column ``context_key`` if the
        writer has one; returns how many records were added. Written first (and without
        ``primer_sample``), a table larger than the primer makes it as ``sigma pack FILE``
        samples a file: runs of rows from all over it."""
        records = _column(table, self.field)
        keys = None
        if self.context_key is not None:
            keys = _as_keys(_column(table, self.context_key))
        return self._w.add_many(_prepare(records), None if keys is None else _prepare(keys), True)

    def __len__(self) -> int:
        return len(self._w)

    def close(self) -> None:
        """Codes what is waiting, writes the index and puts the archive in place."""
        self._w.close()

    @property
    def closed(self) -> bool:
        return self._w.closed

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._w.abort()


class ArchiveReader:
    """Reads an archive: ``len``, ``get(i)`` / ``reader[i]`` (decoding only the records ``i``
    depends on), iteration in order, and ``to_arrow()`` for every record in one pass.

    Give the ``codebook`` the archive was written with, unless it is the built-in one; another
    codebook raises ``CodebookMismatchError``.
    """

    def __init__(self, path: StrOrBytesPath, codebook: Optional[Codebook] = None) -> None:
        self._r = _native.RawArchiveReader(os.fsdecode(path), codebook)

    @property
    def field(self) -> str:
        """The field the records came from (``sigma pack --field``)."""
        return self._r.field

    @property
    def codebook_id(self) -> str:
        """The id of the archive's codebook."""
        return self._r.codebook_id

    def __len__(self) -> int:
        return len(self._r)

    def get(self, index: int) -> bytes:
        """Record ``index`` (negative counts from the end)."""
        return self._r.get(index)

    def __getitem__(self, index: int) -> bytes:
        return self._r.get(index)

    def __iter__(self) -> Iterator[bytes]:
        n = len(self._r)
        for start in range(0, n, 1024):
            yield from self._r.range(start, min(start + 1024, n))

    def to_arrow(self, as_str: bool = False) -> Any:
        """Every record as an Arrow array (large_binary, or large_string if ``as_str``),
        checking every block: a pyarrow array if pyarrow is installed, else an object with
        the Arrow PyCapsule interface."""
        out = self._r.to_arrow(as_str)
        try:
            import pyarrow as pa
        except ImportError:
            return out
        return pa.array(out)

    def close(self) -> None:
        """Nothing to release early; present for symmetry with files."""

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

