"""SigmaLang on Spark: compress a column of a DataFrame with ``mapInArrow``, write it to Parquet
with the codebook id beside it, read it back and decode.

Spark hands each task pyarrow ``RecordBatch``es; each record is coded on its own with
:func:`sigmalang.compress_batch`, so the payloads are the same bytes as one process makes,
whatever the partitioning. The codebook is broadcast once (it pickles as its file), not shipped
with every task. The codebook id travels as the column's Spark metadata
(``sigmalang.codebook``), which Spark keeps in the Parquet files it writes; :func:`read_parquet`
checks it before decoding anything.

Needs pyspark (3.4 or later, for ``mapInArrow`` and ``withMetadata``) and a JVM; it is imported
only when these functions are called.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import pyarrow as pa

from . import CODEBOOK_METADATA_KEY, Codebook, check_codebook, compress_batch, decompress_batch

__all__ = ["compress_dataframe", "decompress_dataframe", "read_parquet", "write_parquet"]


def _schema_with(df: Any, column: str, data_type: Any) -> Any:
    from pyspark.sql.types import StructField, StructType

    if column not in df.columns:
        raise ValueError(f"no column {column!r} in the DataFrame (columns: {df.columns})")
    fields = [
        StructField(f.name, data_type, f.nullable) if f.name == column else f
        for f in df.schema.fields
    ]
    return StructType(fields)


def _replace(batch: pa.RecordBatch, column: str, values: pa.Array) -> pa.RecordBatch:
    i = batch.schema.get_field_index(column)
    columns = batch.columns[:i] + [values] + batch.columns[i + 1 :]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def compress_dataframe(
    df: Any, column: str, codebook: Optional[Codebook] = None, *, threads: int = 1
) -> Any:
    """``df`` with ``column`` (string or binary) replaced by per-record payloads (binary); the
    column's metadata names the codebook. ``threads`` per task (1: Spark runs a task a core)."""
    from pyspark.sql.types import BinaryType

    cb = codebook or Codebook.default()
    shipped = df.sparkSession.sparkContext.broadcast(cb)

    def compress_parts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        book = shipped.value
        for b in batches:
            payloads = compress_batch(b.column(column), book, threads=threads)
            # Spark's Arrow reader wants plain binary; the metadata goes on the Spark schema.
            yield _replace(b, column, payloads.cast(pa.binary()))

    out = df.mapInArrow(compress_parts, _schema_with(df, column, BinaryType()))
    return out.withMetadata(column, {CODEBOOK_METADATA_KEY: cb.id})


def decompress_dataframe(
    df: Any,
    column: str,
    codebook: Optional[Codebook] = None,
    *,
    as_str: bool = True,
    threads: int = 1,
) -> Any:
    """``df`` with the payloads of ``column`` decoded (strings if ``as_str``, else binaries). A
    column whose metadata names another codebook raises ``CodebookMismatchError`` here, before
    any task runs."""
    from pyspark.sql.types import BinaryType, StringType

    if column not in df.columns:
        raise ValueError(f"no column {column!r} in the DataFrame (columns: {df.columns})")
    stored = df.schema[column].metadata.get(CODEBOOK_METADATA_KEY)
    if stored is not None:
        check_codebook(stored, codebook)
    cb = codebook or Codebook.default()
    shipped = df.sparkSession.sparkContext.broadcast(cb)

    def decompress_parts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        book = shipped.value
        for b in batches:
            records = decompress_batch(b.column(column), book, threads=threads, as_str=as_str)
            yield _replace(b, column, records.cast(pa.string() if as_str else pa.binary()))

    target = StringType() if as_str else BinaryType()
    return df.mapInArrow(decompress_parts, _schema_with(df, column, target))


def write_parquet(
    df: Any,
    path: str,
    column: str,
    codebook: Optional[Codebook] = None,
    *,
    mode: str = "error",
    threads: int = 1,
) -> None:
    """Writes ``df`` to Parquet under ``path`` with ``column`` compressed (a binary column of
    payloads whose metadata names the codebook). Spark's Parquet codec (``spark.sql.parquet.compression.codec``,
    snappy by default) still applies to every column; it gains next to nothing on the payloads."""
    compress_dataframe(df, column, codebook, threads=threads).write.mode(mode).parquet(path)


def read_parquet(
    spark: Any,
    path: str,
    column: str,
    codebook: Optional[Codebook] = None,
    *,
    as_str: bool = True,
    threads: int = 1,
) -> Any:
    """Reads Parquet written by :func:`write_parquet` and decodes ``column``. The codebook id
    stored with the column is checked first: another codebook raises
    ``CodebookMismatchError``; a column without one raises ``ValueError``."""
    df = spark.read.parquet(path)
    if column not in df.columns:
        raise ValueError(f"{path}: no column {column!r} (columns: {df.columns})")
    if CODEBOOK_METADATA_KEY not in df.schema[column].metadata:
        raise ValueError(f"{path}: column {column!r} has no {CODEBOOK_METADATA_KEY} metadata")
    return decompress_dataframe(df, column, codebook, as_str=as_str, threads=threads)
