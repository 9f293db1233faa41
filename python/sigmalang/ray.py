"""SigmaLang on Ray Data: compress a column of a distributed dataset, Parquet with the codebook
id in its key-value metadata, codebooks trained on a sample, keyed archives with a manifest.

Every function gives the same bytes whatever the number of nodes, blocks or threads: records
are coded one by one (Parquet) or partitioned by a hash of their key and ordered by a column
(archives), never by where or when they were processed. :func:`write_archives_local` is the
same job in one process (no Ray), and makes the same files.

The codebook is put in the object store once per job; each worker process fetches it once and
keeps it (a 1.4 MB codebook is not shipped with every task).
"""

from __future__ import annotations

import os
import zlib
from typing import Any, Dict, List, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import (
    CODEBOOK_METADATA_KEY,
    ArchiveReader,
    ArchiveWriter,
    Codebook,
    check_codebook,
    compress_batch,
    decompress_batch,
)

__all__ = [
    "COLUMN_METADATA_KEY",
    "KeyedArchives",
    "compress_dataset",
    "decompress_dataset",
    "read_parquet",
    "train_codebook",
    "write_archives",
    "write_archives_local",
    "write_parquet",
]

#: Parquet key-value metadata: the compressed column's name (the codebook id is under
#: ``sigmalang.CODEBOOK_METADATA_KEY``).
COLUMN_METADATA_KEY = "sigmalang.column"

#: The manifest of a directory of keyed archives.
MANIFEST = "manifest.parquet"

# Codebooks a worker process has fetched from the object store, by id.
_CODEBOOKS: Dict[str, Codebook] = {}


class _Shipped:
    """A codebook in the object store. The reference is wrapped so that Ray does not fetch it
    for every task: a worker fetches it the first time it needs it and keeps it."""

    def __init__(self, codebook: Codebook) -> None:
        import ray

        self.id = codebook.id
        self.ref = [ray.put(codebook)]

    def get(self) -> Codebook:
        cb = _CODEBOOKS.get(self.id)
        if cb is None:
            import ray

            cb = ray.get(self.ref[0])
            _CODEBOOKS[self.id] = cb
        return cb


def _with_metadata(table: pa.Table, column: str, codebook_id: str) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[CODEBOOK_METADATA_KEY.encode()] = codebook_id.encode()
    meta[COLUMN_METADATA_KEY.encode()] = column.encode()
    return table.replace_schema_metadata(meta)


def _compress_table(table: pa.Table, column: str, shipped: _Shipped, threads: int) -> pa.Table:
    cb = shipped.get()
    i = table.schema.get_field_index(column)
    payloads = compress_batch(table.column(i), cb, threads=threads)
    field = pa.field(column, payloads.type, metadata={CODEBOOK_METADATA_KEY: cb.id})
    return _with_metadata(table.set_column(i, field, payloads), column, cb.id)


def _decompress_table(
    table: pa.Table, column: str, shipped: _Shipped, threads: int, as_str: bool
) -> pa.Table:
    cb = shipped.get()
    meta = table.schema.metadata or {}
    stored = meta.get(CODEBOOK_METADATA_KEY.encode())
    if stored is not None:
        check_codebook(stored.decode(), cb)
    i = table.schema.get_field_index(column)
    records = decompress_batch(table.column(i), cb, threads=threads, as_str=as_str)
    return table.set_column(i, pa.field(column, records.type), records).replace_schema_metadata(None)


def compress_dataset(
    ds: Any,
    column: str,
    codebook: Optional[Codebook] = None,
    *,
    threads: int = 1,
    batch_size: Optional[int] = 4096,
    **map_batches_args: Any,
) -> Any:
    """``ds`` with ``column`` (strings or binaries) replaced by per-record payloads (binary),
    the codebook id in the schema metadata. ``threads`` per task (1: Ray runs one task a CPU)."""
    shipped = _Shipped(codebook or Codebook.default())
    return ds.map_batches(
        _compress_table,
        batch_format="pyarrow",
        batch_size=batch_size,
        fn_kwargs={"column": column, "shipped": shipped, "threads": threads},
        **map_batches_args,
    )


def decompress_dataset(
    ds: Any,
    column: str,
    codebook: Optional[Codebook] = None,
    *,
    as_str: bool = True,
    threads: int = 1,
    batch_size: Optional[int] = 4096,
    **map_batches_args: Any,
) -> Any:
    """``ds`` with the payloads of ``column`` decoded (strings if ``as_str``, else binaries)."""
    shipped = _Shipped(codebook or Codebook.default())
    return ds.map_batches(
        _decompress_table,
        batch_format="pyarrow",
        batch_size=batch_size,
        fn_kwargs={"column": column, "shipped": shipped, "threads": threads, "as_str": as_str},
        **map_batches_args,
    )


def write_parquet(
    ds: Any,
    path: str,
    column: str,
    codebook: Optional[Codebook] = None,
    *,
    threads: int = 1,
    **write_args: Any,
) -> None:
    """Writes ``ds`` to Parquet files under ``path`` with ``column`` compressed: a binary column
    of payloads, the codebook id (``sigmalang.codebook``) and the column (``sigmalang.column``)
    in every file's key-value metadata. Other columns keep Parquet's own compression.

    Payloads carry no checksum of their own (a damaged payload decodes to wrong text, not an
    error), so every page is written with its CRC (``write_page_checksum``), which
    :func:`read_parquet` verifies; pass ``write_page_checksum=False`` to leave them out."""
    write_args.setdefault("write_page_checksum", True)
    compress_dataset(ds, column, codebook, threads=threads).write_parquet(path, **write_args)


def _parquet_files(path: str) -> List[str]:
    if os.path.isdir(path):
        return sorted(
            os.path.join(root, f)
            for root, _, files in os.walk(path)
            for f in files
            if f.endswith(".parquet")
        )
    return [path]


def read_parquet(
    path: str,
    column: Optional[str] = None,
    codebook: Optional[Codebook] = None,
    *,
    as_str: bool = True,
    threads: int = 1,
    **read_args: Any,
) -> Any:
    """Reads Parquet written by :func:`write_parquet` and decodes the compressed column (named
    by the files' metadata unless given). Every file's codebook id is checked first: another
    codebook raises ``CodebookMismatchError``. Page checksums (which :func:`write_parquet`
    writes) are asked to be verified; Ray versions whose Parquet reader ignores the option still
    fail on most damage through the page codec, and ``pyarrow.parquet.read_table(f,
    page_checksum_verification=True)`` verifies any file."""
    import pyarrow.dataset as pds
    import ray.data

    read_args.setdefault(
        "fragment_scan_options", pds.ParquetFragmentScanOptions(page_checksum_verification=True)
    )
    files = _parquet_files(path)
    if not files:
        raise FileNotFoundError(f"no Parquet files under {path}")
    for f in files:
        meta = pq.read_schema(f).metadata or {}
        stored = meta.get(CODEBOOK_METADATA_KEY.encode())
        if stored is None:
            raise ValueError(f"{f}: no {CODEBOOK_METADATA_KEY} in the Parquet metadata")
        check_codebook(stored.decode(), codebook)
        named = meta.get(COLUMN_METADATA_KEY.encode(), b"").decode()
        if column is None:
            column = named
        elif named and named != column:
            raise ValueError(f"{f}: the compressed column is {named!r}, not {column!r}")
    assert column is not None
    ds = ray.data.read_parquet(path, **read_args)
    return decompress_dataset(ds, column, codebook, as_str=as_str, threads=threads)


def train_codebook(
    ds: Any,
    column: str,
    *,
    sample_records: int = 20_000,
    level: str = "default",
    seed: int = 0,
) -> Codebook:
    """Trains a codebook on a random sample of about ``sample_records`` records of ``column``
    (``Dataset.random_sample`` with ``seed``); the training itself runs on the driver."""
    import ray

    total = ds.count()
    if total == 0:
        raise ValueError("the dataset is empty")
    fraction = min(1.0, sample_records / total)
    sample = ds.select_columns([column])
    if fraction < 1.0:
        sample = sample.random_sample(fraction, seed=seed)
    tables = [t for t in ray.get(sample.to_arrow_refs()) if t.num_rows]
    return Codebook.train(pa.concat_tables(tables).column(column), level=level)


def _partition(keys: pa.ChunkedArray, partitions: int) -> pa.Array:
    """The partition of every key: CRC-32 of its UTF-8 text, modulo ``partitions``."""
    return pa.array(
        [zlib.crc32(str(k).encode()) % partitions if k is not None else 0 for k in keys.to_pylist()],
        pa.int32(),
    )


def _archive_name(part: int) -> str:
    return f"part-{part:05d}.sga"


def _write_partition(
    table: pa.Table,
    directory: str,
    part: int,
    column: str,
    key: str,
    order_by: str,
    codebook: Optional[Codebook],
) -> pa.Table:
    """Writes the records of one partition, ordered by ``order_by``, into its archive; returns
    the manifest rows."""
    table = table.sort_by([(order_by, "ascending")])
    name = _archive_name(part)
    with ArchiveWriter(os.path.join(directory, name), codebook, context_key=key, field=column) as w:
        w.write_table(table)
    n = table.num_rows
    return pa.table(
        {
            order_by: table.column(order_by),
            key: table.column(key),
            "archive": pa.array([name] * n, pa.string()),
            "index": pa.array(range(n), pa.int64()),
        }
    )


def _write_group(batch: pa.Table, **kw: Any) -> pa.Table:
    shipped: Optional[_Shipped] = kw.pop("shipped")
    part = batch.column("_sigmalang_part")[0].as_py()
    return _write_partition(batch, part=part, codebook=shipped.get() if shipped else None, **kw)


def _add_partition(batch: pa.Table, key: str, partitions: int) -> pa.Table:
    return batch.append_column("_sigmalang_part", _partition(batch.column(key), partitions))


def _write_manifest(tables: List[pa.Table], directory: str, order_by: str, partitions: int,
                    codebook_id: str) -> str:
    manifest = pa.concat_tables(tables).sort_by([(order_by, "ascending")])
    meta = {b"sigmalang.partitions": str(partitions).encode(),
            CODEBOOK_METADATA_KEY.encode(): codebook_id.encode()}
    path = os.path.join(directory, MANIFEST)
    pq.write_table(manifest.replace_schema_metadata(meta), path, compression="zstd")
    return path


def write_archives(
    ds: Any,
    directory: str,
    column: str,
    key: str,
    order_by: str,
    *,
    partitions: int = 8,
    codebook: Optional[Codebook] = None,
) -> str:
    """Writes the records of ``column`` as keyed archives: rows are partitioned by a hash of
    their ``key`` (all records of a conversation in one archive, coded against each other),
    one archive per partition ordered by ``order_by`` (unique, e.g. a record id or time), plus
    ``manifest.parquet`` mapping every ``order_by`` value to its archive and index. Returns the
    manifest's path. ``directory`` must be reachable from every node (a shared filesystem)."""
    os.makedirs(directory, exist_ok=True)
    cb = codebook or Codebook.default()
    shipped = _Shipped(cb) if codebook is not None else None
    parted = ds.map_batches(
        _add_partition,
        batch_format="pyarrow",
        fn_kwargs={"key": key, "partitions": partitions},
    )
    rows = parted.groupby("_sigmalang_part").map_groups(
        _write_group,
        batch_format="pyarrow",
        fn_kwargs={
            "directory": os.path.abspath(directory),
            "column": column,
            "key": key,
            "order_by": order_by,
            "shipped": shipped,
        },
    )
    import ray

    tables = [t for t in ray.get(rows.to_arrow_refs()) if t.num_rows]
    return _write_manifest(tables, directory, order_by, partitions, cb.id)


def write_archives_local(
    table: pa.Table,
    directory: str,
    column: str,
    key: str,
    order_by: str,
    *,
    partitions: int = 8,
    codebook: Optional[Codebook] = None,
) -> str:
    """:func:`write_archives` in one process, without Ray, on a pyarrow table: the same files."""
    os.makedirs(directory, exist_ok=True)
    table = table.append_column("_sigmalang_part", _partition(table.column(key), partitions))
    tables = []
    for part in sorted(set(table.column("_sigmalang_part").to_pylist())):
        rows = table.filter(pc.equal(table.column("_sigmalang_part"), part))
        tables.append(_write_partition(rows, directory, part, column, key, order_by, codebook))
    cb = codebook or Codebook.default()
    return _write_manifest(tables, directory, order_by, partitions, cb.id)


class KeyedArchives:
    """A directory written by :func:`write_archives`: any record by its ``order_by`` value."""

    def __init__(self, directory: str, codebook: Optional[Codebook] = None) -> None:
        self.directory = directory
        self.codebook = codebook
        manifest = pq.read_table(os.path.join(directory, MANIFEST))
        self.order_by = manifest.column_names[0]
        self._where = {
            v: (a, i)
            for v, a, i in zip(
                manifest.column(0).to_pylist(),
                manifest.column("archive").to_pylist(),
                manifest.column("index").to_pylist(),
            )
        }
        self._readers: Dict[str, ArchiveReader] = {}

    def __len__(self) -> int:
        return len(self._where)

    def get(self, value: Any) -> bytes:
        """The record whose ``order_by`` column is ``value``."""
        archive, index = self._where[value]
        reader = self._readers.get(archive)
        if reader is None:
            reader = ArchiveReader(os.path.join(self.directory, archive), self.codebook)
            self._readers[archive] = reader
        return reader.get(index)
